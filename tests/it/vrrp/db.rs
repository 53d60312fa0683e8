//! The writer VIP's DB actions against a real MariaDB of the test's own
//! (in the router's namespace, port 26301 there): MASTER promotes
//! (`read_only=OFF`), FAULT and a graceful stop fence (`read_only=ON`).
//! A `mariadb_alive` check logs in to the same server.

use std::process::Command;
use std::time::Duration;

use super::lab::{run, wait_until, Lab};
use super::{tandem_conf, wait_state};

struct Mariadb {
    socket: String,
}

impl Mariadb {
    fn start(lab: &mut Lab) -> Mariadb {
        let data = lab.dir.path().join("db");
        let data_s = data.to_str().unwrap().to_owned();
        run(&[
            "mariadb-install-db",
            "--no-defaults",
            &format!("--datadir={data_s}"),
            "--user=root",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            "--skip-name-resolve",
        ]);
        let socket = format!("{data_s}/s.sock");
        let ns = lab.router(1);
        lab.spawn(
            &ns,
            "mariadbd",
            &[
                "mariadbd",
                "--no-defaults",
                &format!("--datadir={data_s}"),
                &format!("--socket={socket}"),
                "--port=26301",
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=16M",
                "--performance-schema=OFF",
            ],
        );
        let db = Mariadb { socket };
        // A unix socket path is reachable from any namespace.
        assert!(
            wait_until(Duration::from_secs(60), || db.sql("SELECT 1").is_some()),
            "mariadbd did not start:\n{}",
            lab.log("mariadbd")
        );
        db.sql(
            "DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES; \
             CREATE USER 'vrrp'@'%' IDENTIFIED BY 'vrrppass'; \
             GRANT ALL PRIVILEGES ON *.* TO 'vrrp'@'%'; SET GLOBAL read_only = ON",
        )
        .expect("setup");
        db
    }

    fn sql(&self, sql: &str) -> Option<String> {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-uroot", "-N", "-B"])
            .arg(format!("--socket={}", self.socket))
            .args(["-e", sql])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn read_only(&self) -> Option<String> {
        self.sql("SELECT @@global.read_only")
    }
}

#[test]
fn vrrp_db_action_promotes_on_master_and_fences_on_fault_and_stop() {
    let mut lab = Lab::new("db", 1);
    let db = Mariadb::start(&mut lab);
    let extra = r#"
track = [{ check = "db", weight = 0 }]
[vrrp.instances.db]
address = "127.0.0.1:26301"
user = "vrrp"
password = "vrrppass"

[[vrrp.checks]]
name = "db"
kind = "mariadb_alive"
address = "127.0.0.1:26301"
user = "vrrp"
password = "vrrppass"
interval_ms = 200
"#;
    let r1 = lab.tandem(1, "r1", &tandem_conf(100, 100, extra));
    wait_state(&lab, 1, "MASTER");
    assert!(
        wait_until(Duration::from_secs(10), || db.read_only().as_deref()
            == Some("0")),
        "not promoted: read_only = {:?}",
        db.read_only()
    );
    assert_eq!(lab.status(1).unwrap()["checks"]["db"], true);

    lab.link(1, false);
    wait_state(&lab, 1, "FAULT");
    assert!(
        wait_until(Duration::from_secs(10), || db.read_only().as_deref()
            == Some("1")),
        "not fenced in FAULT"
    );
    lab.link(1, true);
    wait_state(&lab, 1, "MASTER");
    assert!(wait_until(Duration::from_secs(10), || db
        .read_only()
        .as_deref()
        == Some("0")));

    let status = lab.signal(&r1, "-TERM").expect("tandem stops");
    assert!(status.success());
    // The fence ran before the process exited.
    assert_eq!(db.read_only().as_deref(), Some("1"));
}
