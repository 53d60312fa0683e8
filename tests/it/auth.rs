//! Authentication: native with a configured password or only its hash,
//! caching_sha2_password fast auth and RSA full auth, auth switch for other
//! plugins, TLS and require_tls.

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Conn;
use rsa::pkcs8::DecodePublicKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tandem::mysql::protocol::auth;
use tandem::mysql::protocol::handshake::{BackendGreeting, ClientHello};
use tandem::mysql::protocol::CapabilityFlags as Cap;

use crate::common::{config_text, write_cert, Proxy};

async fn read_packet(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut h))
        .await
        .unwrap()
        .unwrap();
    let len = h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16;
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).await.unwrap();
    (h[3], p)
}

async fn send(s: &mut TcpStream, seq: u8, payload: &[u8]) {
    let n = payload.len();
    let mut b = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    b.extend_from_slice(payload);
    s.write_all(&b).await.unwrap();
}

fn hello(user: &str, plugin: &str, token: Vec<u8>) -> Vec<u8> {
    ClientHello {
        capabilities: (Cap::CLIENT_PROTOCOL_41
            | Cap::CLIENT_SECURE_CONNECTION
            | Cap::CLIENT_PLUGIN_AUTH
            | Cap::CLIENT_LONG_PASSWORD)
            .bits(),
        max_packet: 1 << 24,
        collation: 45,
        user: user.into(),
        auth_response: token,
        auth_plugin: Some(plugin.into()),
        ..Default::default()
    }
    .encode()
}

/// After a login, runs `SELECT CURRENT_USER()` over the raw socket and checks
/// a result arrives (a column count packet, not an ERR).
async fn query_works(s: &mut TcpStream) {
    send(s, 0, b"\x03SELECT CURRENT_USER()").await;
    let (_, p) = read_packet(s).await;
    assert_eq!(p, vec![1], "one column");
}

#[tokio::test]
async fn password_hash_user_logs_in_and_reaches_the_backend() {
    let proxy = Proxy::start().await;
    let mut conn = Conn::from_url(proxy.url("app2", "app2pass", "appdb"))
        .await
        .unwrap();
    let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert!(who.unwrap().starts_with("app2@"));
    let e = Conn::from_url(proxy.url("app2", "wrong", "appdb"))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("1045") || e.to_string().contains("Access denied"),
        "{e}"
    );
}

#[tokio::test]
async fn caching_sha2_fast_auth_with_a_configured_password() {
    let proxy = Proxy::start().await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let (_, g) = read_packet(&mut s).await;
    let g = BackendGreeting::parse(&g).unwrap();
    let token = auth::sha2_token("apppass", &g.scramble[..20]);
    send(&mut s, 1, &hello("app", auth::CACHING_SHA2, token)).await;
    let (seq, p) = read_packet(&mut s).await;
    assert_eq!((seq, p), (2, vec![0x01, auth::SHA2_FAST_AUTH_OK]));
    let (seq, p) = read_packet(&mut s).await;
    assert_eq!((seq, p[0]), (3, 0x00), "OK after fast auth");
    query_works(&mut s).await;
}

#[tokio::test]
async fn caching_sha2_full_auth_through_rsa_for_a_hash_only_user() {
    let proxy = Proxy::start().await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let (_, g) = read_packet(&mut s).await;
    let g = BackendGreeting::parse(&g).unwrap();
    let scramble = g.scramble[..20].to_vec();
    send(
        &mut s,
        1,
        &hello(
            "app2",
            auth::CACHING_SHA2,
            auth::sha2_token("app2pass", &scramble),
        ),
    )
    .await;
    let (_, p) = read_packet(&mut s).await;
    assert_eq!(p, vec![0x01, auth::SHA2_PERFORM_FULL_AUTH]);
    send(&mut s, 3, &[auth::SHA2_REQUEST_PUBLIC_KEY]).await;
    let (_, p) = read_packet(&mut s).await;
    assert_eq!(p[0], 0x01);
    let key =
        rsa::RsaPublicKey::from_public_key_pem(std::str::from_utf8(&p[1..]).unwrap()).unwrap();
    let plain = auth::xor_with_scramble(b"app2pass\0", &scramble);
    let enc = key
        .encrypt(
            &mut rand::thread_rng(),
            rsa::Oaep::new::<sha1::Sha1>(),
            &plain,
        )
        .unwrap();
    send(&mut s, 5, &enc).await;
    let (seq, p) = read_packet(&mut s).await;
    assert_eq!((seq, p[0]), (6, 0x00), "OK after RSA full auth: {p:?}");
    query_works(&mut s).await;
}

#[tokio::test]
async fn unknown_client_plugin_gets_an_auth_switch() {
    let proxy = Proxy::start().await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let (_, g) = read_packet(&mut s).await;
    let g = BackendGreeting::parse(&g).unwrap();
    send(&mut s, 1, &hello("app", "client_ed25519", vec![7; 64])).await;
    let (seq, p) = read_packet(&mut s).await;
    assert_eq!(seq, 2);
    assert_eq!(p[0], 0xFE, "AuthSwitchRequest");
    let nul = p.iter().position(|&b| b == 0).unwrap();
    assert_eq!(&p[1..nul], auth::NATIVE.as_bytes());
    let switch_scramble = &p[nul + 1..nul + 21];
    assert_eq!(switch_scramble, &g.scramble[..20]);
    send(&mut s, 3, &auth::native_token("apppass", switch_scramble)).await;
    let (seq, p) = read_packet(&mut s).await;
    assert_eq!((seq, p[0]), (4, 0x00));
    query_works(&mut s).await;
}

fn mariadb_cli(port: u16, extra: &[&str], sql: &str) -> std::process::Output {
    std::process::Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uapp",
            "-papppass",
            "appdb",
        ])
        .args(extra)
        .args(["-e", sql])
        .output()
        .expect("mariadb client installed")
}

#[tokio::test]
async fn tls_and_require_tls_with_the_mariadb_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_cert(dir.path());
    let extra =
        format!("require_tls = true\n[mysql.tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n");
    // The [mysql.tls] table must come after the plain keys of [mysql]; put
    // users/backends (array tables) after it, as config_text does.
    let proxy = Proxy::start_with(&config_text(&extra)).await;
    let port = proxy.addr().port();
    let out = tokio::task::spawn_blocking(move || {
        (
            mariadb_cli(port, &["--ssl", "--skip-ssl-verify-server-cert"], "\\s"),
            mariadb_cli(port, &["--skip-ssl"], "SELECT 1"),
            mariadb_cli(
                port,
                &["--ssl", "--skip-ssl-verify-server-cert", "--compress", "-N"],
                "\\s SELECT REPEAT('ab', 100000);",
            ),
        )
    })
    .await
    .unwrap();
    let tls = String::from_utf8_lossy(&out.0.stdout);
    assert!(
        out.0.status.success(),
        "{}",
        String::from_utf8_lossy(&out.0.stderr)
    );
    assert!(tls.contains("Cipher in use is"), "TLS in use: {tls}");
    let plain_err = String::from_utf8_lossy(&out.1.stderr);
    assert!(!out.1.status.success());
    assert!(
        plain_err.contains("3159"),
        "require_tls refuses plain: {plain_err}"
    );
    // The compressed protocol inside TLS.
    let both = String::from_utf8_lossy(&out.2.stdout);
    assert!(
        out.2.status.success(),
        "{}",
        String::from_utf8_lossy(&out.2.stderr)
    );
    assert!(both.contains("Cipher in use is"), "TLS in use: {both}");
    assert!(both.contains("Compressed"), "compressed: {both}");
    assert!(
        both.contains(&"ab".repeat(100000)),
        "a 200 KB value read back"
    );
}

async fn backend_cipher(extra: &str) -> Result<String, mysql_async::Error> {
    let proxy = Proxy::start_with(&config_text(extra)).await;
    let mut conn = Conn::from_url(proxy.url("app", "apppass", "appdb")).await?;
    let row: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await?;
    Ok(row.map(|r| r.1).unwrap_or_default())
}

#[tokio::test]
async fn backend_tls_verified_against_the_testbed_ca() {
    let ca = crate::common::testbed().dir.join("tls/ca.pem");
    let extra = format!(
        "[mysql.backend_tls]\nca_file = \"{}\"\nverify = true\nrequired = true\n",
        ca.display()
    );
    let cipher = backend_cipher(&extra).await.unwrap();
    assert!(!cipher.is_empty(), "the backend session is encrypted");
    // Without TLS towards the backend the same status is empty.
    assert_eq!(backend_cipher("").await.unwrap(), "");
    // A CA that did not sign the backend's certificate: a clear refusal.
    let dir = tempfile::tempdir().unwrap();
    let (other_ca, _) = write_cert(dir.path());
    let extra = format!("[mysql.backend_tls]\nca_file = \"{other_ca}\"\nverify = true\n");
    match backend_cipher(&extra).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1429);
            assert!(e.message.contains("tls"), "{}", e.message);
        }
        other => panic!("expected ERR 1429, got {other:?}"),
    }
}

/// `auth = "passthrough"`: accounts that exist only on the primary log in,
/// change user to each other, open pooled connections on the replicas with
/// what their login proved, and a changed password is picked up at once.
#[tokio::test]
async fn passthrough_logs_in_accounts_tandem_was_not_configured_with() {
    use crate::common::root_sql;
    let user = crate::common::unique("pt");
    let other = crate::common::unique("pt2");
    for (u, pw) in [(&user, "ptpass1"), (&other, "otherpass")] {
        root_sql(
            0,
            &format!(
                "CREATE USER '{u}'@'%' IDENTIFIED BY '{pw}'; GRANT SELECT ON appdb.* TO '{u}'@'%'"
            ),
        );
    }
    // The replicas must have the accounts before reads go there.
    crate::common::wait_replicas_caught_up().await;
    let tb = crate::common::testbed();
    let mut text = config_text(
        "auth = \"passthrough\"\n[mysql.passthrough]\nuser = \"app\"\npassword = \"apppass\"\n",
    );
    for (i, r) in tb.replicas.iter().enumerate() {
        text.push_str(&format!(
            "\n[[mysql.backends]]\nname = \"r{i}\"\naddress = \"{r}\"\nrole = \"replica\"\n"
        ));
    }
    let proxy = Proxy::start_with(&text).await;
    let plain = Proxy::start().await;

    // A login as the account: writes' connection and the replicas' ones.
    let mut c = Conn::from_url(proxy.url(&user, "ptpass1", "appdb"))
        .await
        .unwrap_or_else(|e| panic!("login as an account only the primary knows: {e}"));
    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some(format!("{user}@%").as_str()));
    for _ in 0..6 {
        let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM users").await.unwrap();
        assert_eq!(n, Some(20), "a read (on a replica) as the account");
    }
    let e = Conn::from_url(proxy.url(&user, "wrong", "appdb"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1045"), "wrong password: {e}");
    let e = Conn::from_url(plain.url(&user, "ptpass1", "appdb"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1045"), "without passthrough: {e}");

    // COM_CHANGE_USER to another account tandem was not configured with.
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some(other.clone()))
        .with_pass(Some("otherpass".into()))
        .with_db_name(Some("appdb".into()));
    c.change_user(opts)
        .await
        .expect("change user to an account of the primary");
    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some(format!("{other}@%").as_str()));
    c.disconnect().await.unwrap();

    // A changed password: the new one works at once, the old one no more.
    root_sql(
        0,
        &format!("ALTER USER '{user}'@'%' IDENTIFIED BY 'ptpass2'"),
    );
    let mut c = Conn::from_url(proxy.url(&user, "ptpass2", "appdb"))
        .await
        .unwrap_or_else(|e| panic!("the new password: {e}"));
    c.query_drop("SELECT 1").await.unwrap();
    c.disconnect().await.unwrap();
    let e = Conn::from_url(proxy.url(&user, "ptpass1", "appdb"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1045"), "the old password: {e}");

    for u in [&user, &other] {
        root_sql(0, &format!("DROP USER '{u}'@'%'"));
    }
}

/// Pass-through of logins tandem cannot check itself: an ed25519 account
/// (the mariadb CLI answers the primary's own challenge through tandem), and
/// native accounts when the pass-through account may not read `mysql.user`.
/// Those sessions stay on the connection the primary authenticated.
#[tokio::test]
async fn passthrough_relays_logins_tandem_cannot_check() {
    use crate::common::root_sql;
    let ed = crate::common::unique("pted");
    let native = crate::common::unique("ptnat");
    // The ed25519 plugin and account exist on the primary only (not
    // replicated: the replicas do not load the plugin).
    let have = root_sql(
        0,
        "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'",
    );
    let install = if have == "0" {
        "INSTALL SONAME 'auth_ed25519';"
    } else {
        ""
    };
    root_sql(
        0,
        &format!(
            "SET sql_log_bin = 0; {install} \
             CREATE USER '{ed}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('edpass'); \
             GRANT SELECT ON appdb.* TO '{ed}'@'%'"
        ),
    );
    root_sql(
        0,
        &format!(
            "CREATE USER '{native}'@'%' IDENTIFIED BY 'natpass'; GRANT SELECT ON appdb.* TO '{native}'@'%'"
        ),
    );
    crate::common::wait_replicas_caught_up().await;
    let tb = crate::common::testbed();
    // The monitor account cannot read mysql.user: every account is relayed.
    let mut text = config_text("auth = \"passthrough\"\n");
    for (i, r) in tb.replicas.iter().enumerate() {
        text.push_str(&format!(
            "\n[[mysql.backends]]\nname = \"r{i}\"\naddress = \"{r}\"\nrole = \"replica\"\n"
        ));
    }
    let proxy = Proxy::start_with(&text).await;
    let port = proxy.addr().port().to_string();
    let cli = move |user: &str, pw: &str| {
        let out = std::process::Command::new("mariadb")
            .args(["--no-defaults", "-h127.0.0.1", "-P", &port, "-u", user])
            .arg(format!("-p{pw}"))
            .args(["-N", "-B", "appdb", "-e"])
            .arg("SELECT CURRENT_USER(); SELECT COUNT(*) FROM users; SELECT COUNT(*) FROM users")
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    };
    let (out, err) = tokio::task::spawn_blocking({
        let (ed, cli) = (ed.clone(), cli.clone());
        move || cli(&ed, "edpass")
    })
    .await
    .unwrap();
    assert_eq!(
        out,
        format!("{ed}@%\n20\n20"),
        "ed25519 through tandem: {err}"
    );
    let (_, err) = tokio::task::spawn_blocking({
        let ed = ed.clone();
        move || cli(&ed, "wrong")
    })
    .await
    .unwrap();
    assert!(
        err.contains("ERROR 1045"),
        "the primary's refusal reaches the client: {err}"
    );

    let mut c = Conn::from_url(proxy.url(&native, "natpass", "appdb"))
        .await
        .unwrap_or_else(|e| panic!("a native login relayed: {e}"));
    for _ in 0..4 {
        let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
        assert_eq!(who.as_deref(), Some(format!("{native}@%").as_str()));
    }
    c.disconnect().await.unwrap();
    let e = Conn::from_url(proxy.url(&native, "wrong", "appdb"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1045"), "wrong password: {e}");

    root_sql(0, &format!("SET sql_log_bin = 0; DROP USER '{ed}'@'%'"));
    root_sql(0, &format!("DROP USER '{native}'@'%'"));
}
