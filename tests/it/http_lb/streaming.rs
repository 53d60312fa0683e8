//! 1 GiB uploads and a download through the `tandem` binary, whose peak
//! memory must stay far below the size of the bodies.

use std::process::{Command, Stdio};

use super::fixtures::{curl, free_port, wait_listening, Nginx, Proc};

const GIB: u64 = 1 << 30;

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn one_gib_upload_and_download_are_streamed_with_bounded_memory() {
    let nginx = Nginx::start(1);
    let big = nginx.root(1).join("big.bin");
    std::fs::File::create(&big).unwrap().set_len(GIB).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("tandem.toml");
    std::fs::write(
        &config,
        format!(
            "[log]\nlevel = \"warn\"\n[[http.frontends]]\nname = \"web\"\nlisten = \"127.0.0.1:{port}\"\n\
             [[http.frontends.servers]]\nname = \"w1\"\naddress = \"{}\"\n",
            nginx.addr(1)
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tandem = Proc(child);
    wait_listening(port);
    let before = peak_rss_kib(tandem.0.id());

    let url = format!("http://127.0.0.1:{port}/big.bin");
    let (code, out) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        &url,
    ])
    .await;
    assert_eq!((code, out.as_str()), (0, format!("200 {GIB}").as_str()));

    // curl sends `Expect: 100-continue` for a body this large: hyper takes
    // that one. Without `Expect` the relay streams the body itself.
    let up = format!("http://127.0.0.1:{port}/uploads/big.bin");
    let stored = nginx.root(1).join("uploads/big.bin");
    for expect in [None, Some("Expect:")] {
        let mut args = vec!["-T", big.to_str().unwrap(), "-o", "/dev/null"];
        args.extend(expect.map(|e| ["-H", e]).into_iter().flatten());
        args.extend(["-w", "%{http_code}", &up]);
        let (code, out) = curl(&args).await;
        assert_eq!(code, 0);
        assert!(
            out == "201" || out == "204",
            "PUT {expect:?} answered {out}"
        );
        assert_eq!(std::fs::metadata(&stored).unwrap().len(), GIB);
        std::fs::remove_file(&stored).unwrap();
    }

    let after = peak_rss_kib(tandem.0.id());
    assert!(
        after < before + 64 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB for 3 GiB of bodies"
    );

    // A node with only [http] stops cleanly on SIGTERM.
    let pid = tandem.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // Await the exit on a blocking thread; the Proc goes back to be dropped
    // (killed) here if it did not exit in time.
    let mut tandem = tandem;
    let waited = tokio::task::spawn_blocking(move || {
        let status = tandem.0.wait();
        (tandem, status)
    });
    let status = match tokio::time::timeout(std::time::Duration::from_secs(15), waited).await {
        Ok(joined) => joined.unwrap().1.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("tandem did not exit on SIGTERM");
        }
    };
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");
}

#[tokio::test]
async fn max_body_bytes_refuses_large_bodies_with_413() {
    let nginx = Nginx::start(1);
    let lb = super::fixtures::Lb::start(&super::fixtures::frontend(
        "web",
        "max_body_bytes = 1000",
        &[("w1", &nginx.addr(1), 1)],
    ))
    .await;
    let body = "x".repeat(5000);
    let url = lb.url("/uploads/small.bin");
    let (_, out) = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        &body,
        "-w",
        " %{http_code}",
        &url,
    ])
    .await;
    assert!(
        out.ends_with(" 413"),
        "content-length over the limit: {out}"
    );
    // Chunked: the limit is enforced while streaming.
    let (_, out) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &body,
        "-w",
        " %{http_code}",
        &url,
    ])
    .await;
    assert!(
        out.ends_with(" 413") || out.ends_with(" 502"),
        "chunked over the limit: {out}"
    );
    let (_, out) = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "small",
        "-w",
        "%{http_code}",
        &url,
    ])
    .await;
    assert!(out == "201" || out == "204", "{out}");
    // A chunked body within the limit, with Expect: 100-continue, is streamed through whole.
    let chunked = lb.url("/uploads/chunked.bin");
    let (_, out) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        "hello chunks",
        "-w",
        "%{http_code}",
        &chunked,
    ])
    .await;
    assert!(out == "201" || out == "204", "{out}");
    let stored = std::fs::read_to_string(nginx.root(1).join("uploads/chunked.bin")).unwrap();
    assert_eq!(stored, "hello chunks");
}
