//! `lifecycle demo` as a merchant runs it, once per registered platform: the real binary
//! starts its sandbox shop, installs through OAuth, backfills, analyses and reports, logs live
//! webhooks, and stops cleanly on Ctrl-C (SIGINT) or SIGTERM, whatever phase it is in. Its output
//! is read line by line; a broken demo (no report, no live webhook, no clean stop) fails the test
//! rather than hanging it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Customers in the sandbox shop: small, so the demo's run stays short.
const CUSTOMERS: usize = 300;
/// How long the whole demo may take on a loaded CI machine; only a hung demo gets near it.
const DEADLINE: Duration = Duration::from_secs(300);
/// How long the demo may take from a stop signal to its exit: the app's shutdown stages are
/// bounded (about ten seconds each), so a demo that ignores the signal fails well before
/// `DEADLINE`.
const STOP_DEADLINE: Duration = Duration::from_secs(90);

const LIVE_HEADER: &str = "Webhooks from live traffic (Ctrl-C to stop):";

/// The demo process, killed if a failed assertion leaves it running.
struct Demo {
    child: Child,
    lines: Receiver<String>,
    /// Everything read so far, stdout and stderr, for the secrets check and failure messages.
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
    deadline: Instant,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(platform: &str, data_dir: &std::path::Path) -> Demo {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifecycle"));
        cmd.arg("demo")
            .args(["--platform", platform])
            .args(["--customers", &CUSTOMERS.to_string()])
            .args(["--live", "5"])
            .env("LIFECYCLE_BIND", format!("127.0.0.1:{port}"))
            .env("LIFECYCLE_DATA_DIR", data_dir)
            .env("LIFECYCLE_WORKERS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The demo keeps its own SQLite database, keys and credentials: nothing from the
        // environment the tests run in may point it elsewhere.
        for (key, _) in std::env::vars() {
            if key.starts_with("LIFECYCLE_")
                && !matches!(
                    key.as_str(),
                    "LIFECYCLE_BIND" | "LIFECYCLE_DATA_DIR" | "LIFECYCLE_WORKERS"
                )
            {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("DATABASE_URL");
        let mut child = cmd.spawn().expect("lifecycle demo starts");

        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Demo {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
            deadline: Instant::now() + DEADLINE,
        }
    }

    /// The next stdout line, waiting at most `wait` (and never past the deadline); `None` on
    /// a timeout, panics at the end of the output.
    fn next_line_within(&mut self, wait: Duration) -> Option<String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait.min(left)) {
            Ok(line) => {
                self.stdout.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the demo's output ended early\n{}", self.transcript())
            }
        }
    }

    /// Reads until a line satisfies `want`; panics at the deadline or the end of the output.
    fn read_until(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        loop {
            if Instant::now() >= self.deadline {
                panic!("no {what} within {DEADLINE:?}\n{}", self.transcript());
            }
            if let Some(line) = self.next_line_within(DEADLINE)
                && want(&line)
            {
                return line;
            }
        }
    }

    /// Sends one `signal` (SIGINT as a merchant's one Ctrl-C, SIGTERM as `kill` or a service
    /// manager): the demo must say "stopping" and exit, whatever it was doing when the signal
    /// came.
    fn stop(&mut self, signal: libc::c_int) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "signal {signal} sent"
        );
        let deadline = self.deadline.min(Instant::now() + STOP_DEADLINE);
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.next_line_within(wait) {
                Some(line) if line == "stopping" => break,
                Some(_) => {}
                None => panic!(
                    "no \"stopping\" after one signal {signal} within {STOP_DEADLINE:?}\n{}",
                    self.transcript()
                ),
            }
        }
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Whatever it printed while shutting down counts for the secrets check too.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
                    self.stdout.push(line);
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not exit within {STOP_DEADLINE:?} of signal {signal}\n{}",
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Nothing it printed, on stdout or stderr, is shaped like a token or the client secret.
    fn assert_no_secrets(&self) {
        let stderr = self.stderr.lock().unwrap().clone();
        for line in self.stdout.iter().map(String::as_str).chain(stderr.lines()) {
            // The sign-in link is the one credential printed on purpose: for the person at the
            // terminal, good once and for minutes.
            let line = &without_sign_in_token(line);
            for token in ["sbx_at_", "sbx_rt_", "sbx_ot_", "secure_sbx_"] {
                assert!(
                    !line.contains(token),
                    "an access token in the output: `{line}`"
                );
            }
            assert!(
                !has_hex_run(line, 32),
                "something shaped like the client secret or a token in the output: `{line}`"
            );
        }
    }

    fn transcript(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.join("\n"),
            self.stderr.lock().unwrap()
        )
    }
}

/// The line with the token of a sign-in link (`/admin/login?token=...`) cut out.
fn without_sign_in_token(line: &str) -> String {
    match line.find("/admin/login?token=") {
        Some(at) => {
            let start = at + "/admin/login?token=".len();
            let end = line[start..]
                .find(char::is_whitespace)
                .map_or(line.len(), |e| start + e);
            format!("{}{}", &line[..start], &line[end..])
        }
        None => line.to_string(),
    }
}

/// The printed sign-in link, fetched by a fresh browser: the admin page it leads to.
fn open_sign_in_link(link: &str) -> (u16, String) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let r = browser.get(link).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

/// The number after `label` in a line such as `Customers      300   with orders      212`.
fn figure(line: &str, label: &str) -> u64 {
    let rest = &line[line
        .find(label)
        .unwrap_or_else(|| panic!("{label} in `{line}`"))
        + label.len()..];
    rest.split_whitespace()
        .next()
        .and_then(|n| n.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap_or_else(|| panic!("a number after {label} in `{line}`"))
}

/// A live line: `  HH:MM:SS  topic  state`, or `  HH:MM:SS  N webhooks: ...` for a flood.
fn is_live_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("  ") else {
        return false;
    };
    let time = rest.as_bytes().get(..8);
    time.is_some_and(|t| {
        t.iter().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                *b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
    }) && rest.len() > 10
}

/// A run of `len` hex digits: the shape of the client secret the demo generates (16 random
/// bytes) and of the sandbox's access and refresh tokens.
fn has_hex_run(line: &str, len: usize) -> bool {
    let mut run = 0;
    for c in line.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= len {
            return true;
        }
    }
    false
}

fn demo_runs_and_stops_cleanly(platform: &str, signal: libc::c_int) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut demo = Demo::start(platform, dir.path());

    // The report.
    let customers_line = demo.read_until("report", |l| l.starts_with("Customers "));
    let customers = figure(&customers_line, "Customers");
    let with_orders = figure(&customers_line, "with orders");
    // Live traffic runs from the start and may add customers during the backfill.
    assert!(
        customers >= CUSTOMERS as u64,
        "the report counts the sandbox's {CUSTOMERS} customers: `{customers_line}`"
    );
    assert!(
        (1..=customers).contains(&with_orders),
        "some, not more than all, customers have orders: `{customers_line}`"
    );
    let orders_line = demo.read_until("orders figure", |l| l.starts_with("Orders "));
    assert!(
        figure(&orders_line, "Orders") >= with_orders,
        "every customer with orders has at least one: `{orders_line}`\n{}",
        demo.transcript()
    );
    demo.read_until("RFM table", |l| l.starts_with("RFM group"));
    let mut groups = Vec::new();
    loop {
        let line = demo.read_until("RFM group rows", |_| true);
        if line.trim().is_empty() {
            break;
        }
        let mut parts = line.split_whitespace();
        let (Some(group), Some(n), None) = (parts.next(), parts.next(), parts.next()) else {
            panic!("an RFM row is `group count`: `{line}`");
        };
        groups.push((group.to_string(), n.parse::<u64>().unwrap()));
    }
    let total: u64 = groups.iter().map(|(_, n)| n).sum();
    let buyers: u64 = groups
        .iter()
        .filter(|(g, _)| g != "PROSPECTS")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        total, customers,
        "every customer is in one RFM group: {groups:?}"
    );
    assert_eq!(
        buyers, with_orders,
        "the customers with orders are in the groups other than prospects: {groups:?}"
    );

    // The period's retention says its period, apart from the admin's monthly figures.
    let retention = demo.read_until("retention line", |l| l.contains("retention rate"));
    assert!(
        retention.starts_with("Over the last 365 days: retention rate "),
        "`{retention}`"
    );

    // The dry run's summary: it analysed the shop and pushed nothing.
    demo.read_until("segment run", |l| {
        l.starts_with("Segment run (dry run, nothing pushed yet)")
    });
    let shop_line = demo.read_until("summary's shop line", |l| l.starts_with("shop "));
    assert!(
        shop_line.ends_with("(dry run: nothing sent)"),
        "`{shop_line}`"
    );
    let run_customers = demo.read_until("summary's customers", |l| {
        l.trim_start().starts_with("customers:")
    });
    assert!(
        figure(&run_customers, "customers:") >= customers,
        "the run sees at least the report's customers: `{run_customers}`"
    );
    let tags = demo.read_until("summary's tags", |l| l.trim_start().starts_with("tags:"));
    assert!(
        tags.contains("; 0 confirmed, 0 refused, 0 write(s) in 0 request(s)"),
        "a dry run writes no label: `{tags}`"
    );
    let codes = demo.read_until("summary's codes", |l| l.trim_start().starts_with("codes:"));
    assert!(
        codes.contains("0 created, 0 already existed, 0 confirmed with metafields, 0 refused"),
        "a dry run creates no code: `{codes}`"
    );

    // The sign-in link opens the demo shop's admin, signed in, once.
    let admin = demo.read_until("sign-in link", |l| l.starts_with("  admin "));
    let link = admin.split_whitespace().nth(1).unwrap().to_string();
    let shop_line = demo.read_until("link's shop", |l| l.contains("signs you in to "));
    let shop = shop_line
        .split("signs you in to ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_string();
    let (status, page) = open_sign_in_link(&link);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<h1>Overview</h1>") && page.contains(&shop),
        "the admin of {shop}: {page}"
    );
    assert_eq!(open_sign_in_link(&link).0, 401, "the link works once");

    // Live webhooks, then Ctrl-C.
    demo.read_until("live section", |l| l == LIVE_HEADER);
    let live = demo.read_until("live webhook line", is_live_line);
    let status = demo.stop(signal);
    assert!(
        status.success(),
        "the demo exits with 0 after signal {signal}, got {status}\n{}",
        demo.transcript()
    );
    demo.assert_no_secrets();
    eprintln!(
        "demo on {platform}: {customers} customers ({with_orders} with orders), first live line \
         `{}`, stopped cleanly after {:.1} s",
        live.trim(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn demo_on_shopify_reports_logs_live_webhooks_and_stops_on_ctrl_c() {
    demo_runs_and_stops_cleanly("shopify", libc::SIGINT);
}

#[test]
fn demo_on_ecwid_reports_logs_live_webhooks_and_stops_on_ctrl_c() {
    demo_runs_and_stops_cleanly("ecwid", libc::SIGINT);
}

#[test]
fn demo_on_shopify_stops_on_sigterm_during_live_traffic() {
    demo_runs_and_stops_cleanly("shopify", libc::SIGTERM);
}

/// SIGTERM while the app is being installed and the shop backfilled: the demo stops there,
/// before its report and live log, and shuts down what it had started.
#[test]
fn demo_on_shopify_stops_on_sigterm_during_install_and_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo::start("shopify", dir.path());
    demo.read_until("install line", |l| {
        l.starts_with("Installing Lifecycle into ")
    });
    let status = demo.stop(libc::SIGTERM);
    assert!(
        status.success(),
        "the demo exits with 0 after SIGTERM, got {status}\n{}",
        demo.transcript()
    );
    assert!(
        !demo.stdout.iter().any(|l| l == LIVE_HEADER),
        "the demo stopped before its live log\n{}",
        demo.transcript()
    );
    demo.assert_no_secrets();
}
