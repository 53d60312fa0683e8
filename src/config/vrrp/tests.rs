use crate::config::{Config, VirtualIp, VrrpCheckKind};
use std::net::Ipv4Addr;

/// The issue's example, as users will write it.
const ISSUE_EXAMPLE: &str = r#"
[[vrrp.instances]]
name = "public"
interface = "eth0"
vrid = 51
priority = 150
advert_interval_ms = 1000
virtual_ips = ["10.0.0.100/24"]
version = 3                 # 2 for keepalived's default
preempt = true
unicast_peers = []          # empty = multicast
"#;

fn parse(text: &str) -> Config {
    Config::from_toml_str(text, "x.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> String {
    match Config::from_toml_str(text, "x.toml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn issue_example_parses_with_defaults() {
    let c = parse(ISSUE_EXAMPLE);
    assert!(!c.runs_nothing());
    let v = c.vrrp.unwrap();
    let i = &v.instances[0];
    assert_eq!(i.name, "public");
    assert_eq!((i.vrid, i.priority, i.version), (51, 150, 3));
    assert_eq!(
        i.virtual_ips,
        vec![VirtualIp {
            addr: Ipv4Addr::new(10, 0, 0, 100),
            prefix: 24
        }]
    );
    assert!(i.preempt && i.track_interface && i.checksum_pseudo_header);
    assert_eq!(
        (i.garp_count, i.garp_interval_ms, i.preempt_delay_ms),
        (5, 100, 0)
    );
    assert!(i.unicast_peers.is_empty());
}

#[test]
fn full_config_with_checks_groups_and_db() {
    let text = format!(
        r#"{ISSUE_EXAMPLE}
notify = "notify.sh"
track = [{{ check = "web", weight = -60 }}, {{ check = "db", weight = 0 }}]
[vrrp.instances.db]
address = "127.0.0.1:3306"
user = "root"
password = "secret"

[[vrrp.instances]]
name = "private"
interface = "eth1"
vrid = 51
priority = 100
version = 2
advert_interval_ms = 2000
auth_pass = "pw"
virtual_ips = ["192.168.0.10"]
unicast_peers = ["192.168.0.3"]

[[vrrp.checks]]
name = "web"
kind = "http"
address = "127.0.0.1:80"
path = "/health"
rise = 1

[[vrrp.checks]]
name = "db"
kind = "mariadb_writable"
address = "127.0.0.1:3306"
user = "monitor"

[[vrrp.sync_groups]]
name = "all"
instances = ["public", "private"]
"#
    );
    let c = Config::from_toml_str(&text, "x.toml").unwrap();
    let v = c.vrrp.unwrap();
    assert_eq!(v.instances.len(), 2);
    assert_eq!(v.instances[0].track[0].weight, -60);
    assert_eq!(v.instances[1].virtual_ips[0].prefix, 32);
    assert_eq!(
        v.instances[1].unicast_peers,
        vec![Ipv4Addr::new(192, 168, 0, 3)]
    );
    assert!(matches!(
        v.checks[0].kind,
        VrrpCheckKind::Http {
            expect_status: 200,
            ..
        }
    ));
    assert_eq!((v.checks[0].rise, v.checks[0].fall), (1, 3));
    assert_eq!(v.sync_groups[0].instances.len(), 2);
    let dbg = format!("{:?}", v.instances[0].db);
    assert!(!dbg.contains("secret"), "{dbg}");
}

#[test]
fn errors_name_the_field() {
    let second = |extra: &str| {
        format!(
            "{ISSUE_EXAMPLE}\n[[vrrp.instances]]\nname = \"b\"\ninterface = \"eth0\"\nvrid = 52\n\
             priority = 100\nvirtual_ips = [\"10.0.0.101/24\"]\n{extra}"
        )
    };
    let cases = [
        (
            ISSUE_EXAMPLE.replace("vrid = 51", "vrid = 0"),
            "x.toml:vrrp.instances[0].vrid: must be 1 to 255, found 0",
        ),
        (
            ISSUE_EXAMPLE.replace("priority = 150", "priority = 256"),
            "x.toml:vrrp.instances[0].priority: must be 1 to 255 (255 = address owner), found 256",
        ),
        (
            second("").replace("vrid = 52", "vrid = 51"),
            "x.toml:vrrp.instances[1].vrid: vrid 51 is already used on eth0 by instance \"public\"",
        ),
        (
            second("").replace("10.0.0.101/24", "10.0.0.100/24"),
            "x.toml:vrrp.instances[1].virtual_ips[0]: 10.0.0.100 is already a virtual IP of instance \"public\"",
        ),
        (
            ISSUE_EXAMPLE.replace("advert_interval_ms = 1000", "advert_interval_ms = 1005"),
            "x.toml:vrrp.instances[0].advert_interval_ms: must be a multiple of 10 from 10 to 40950 (VRRPv3 counts centiseconds), found 1005",
        ),
        (
            ISSUE_EXAMPLE.replace("version = 3 ", "version = 2 ").replace("1000", "1500"),
            "x.toml:vrrp.instances[0].advert_interval_ms: must be whole seconds from 1000 to 255000 (VRRPv2 counts seconds), found 1500",
        ),
        (
            ISSUE_EXAMPLE.replace("10.0.0.100/24", "10.0.0.300/24"),
            "x.toml:vrrp.instances[0].virtual_ips[0]: expected an IPv4 address with a prefix length like \"10.0.0.100/24\", found \"10.0.0.300/24\"",
        ),
        (
            ISSUE_EXAMPLE.replace("unicast_peers = []", "unicast_peers = [\"224.0.0.18\"]"),
            "x.toml:vrrp.instances[0].unicast_peers[0]: expected a unicast IPv4 address like \"10.0.0.2\", found \"224.0.0.18\"",
        ),
        (
            format!("{ISSUE_EXAMPLE}auth_pass = \"x\""),
            "x.toml:vrrp.instances[0].auth_pass: authentication exists only in VRRPv2 (version = 2)",
        ),
        (
            format!("{ISSUE_EXAMPLE}track = [{{ check = \"nope\" }}]"),
            "x.toml:vrrp.instances[0].track[0].check: no [[vrrp.checks]] named \"nope\"",
        ),
        (
            format!("{ISSUE_EXAMPLE}bogus = 1"),
            "x.toml:vrrp.instances[0].bogus: unknown field",
        ),
        (
            format!("{ISSUE_EXAMPLE}\n[[vrrp.checks]]\nname = \"c\"\nkind = \"ping\""),
            "x.toml:vrrp.checks[0].kind: unknown kind \"ping\", expected tcp, http, mariadb_alive, mariadb_writable, tandem_http_lb, tandem_mysql or script",
        ),
        (
            format!("{ISSUE_EXAMPLE}\n[[vrrp.sync_groups]]\nname = \"g\"\ninstances = [\"public\", \"x\"]"),
            "x.toml:vrrp.sync_groups[0].instances[1]: no instance named \"x\"",
        ),
        ("[vrrp]".to_string(), "x.toml:vrrp.instances: at least one [[vrrp.instances]] is needed"),
    ];
    for (text, want) in cases {
        assert_eq!(error(&text), want, "{text}");
    }
}
