//! The donors' web page in a real browser: headless Chromium driven through
//! chromedriver (W3C WebDriver) against the real server, on SQLite and
//! PostgreSQL.
//!
//! The browser tests need `LEDGER_TEST_CHROMEDRIVER` (the path of
//! chromedriver, say `/usr/bin/chromedriver`; `.ci/run` sets it). Without
//! it, each test says on stderr that the browser tests did not run, and
//! passes; with it set, a driver that is missing or fails fails the test.
//! `LEDGER_TEST_CHROMIUM` names the browser binary (default: chromedriver's
//! own choice, or `/usr/bin/chromium` when it exists).
//! `LEDGER_WEB_SCREENSHOT=docs/web-page.png` also saves the main page's
//! screenshot there (the README's).

#[macro_use]
mod common;
#[allow(dead_code, reason = "the harness serves tests/api.rs as well; these tests use part of it")]
mod api_support;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use api_support::*;
use base64::Engine;
use serde_json::{Value, json};

const CHROMEDRIVER_VARIABLE: &str = "LEDGER_TEST_CHROMEDRIVER";
const PROGRAMME: &str = "MOTUSE";
const DONOR: &str = "EU-AMIF";
const OTHER_DONOR: &str = "DK-MFA";
const OTHER_PROGRAMME: &str = "SAPILOT";
/// How long the test waits for the page to reach a state.
const WAIT_MS: u64 = 20_000;
/// The W3C name of an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

// ---------------------------------------------------------------------------
// The server's log, captured for the whole test binary.

#[derive(Clone)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log lock is not poisoned").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every line the server logs (at every level, every target), from the
/// first call on.
fn server_log() -> String {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buffer = LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = LogBuffer(buffer.clone());
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        buffer
    });
    String::from_utf8_lossy(&buffer.lock().expect("the log lock is not poisoned")).into_owned()
}

// ---------------------------------------------------------------------------
// A small W3C WebDriver client over reqwest.

struct Driver {
    process: Child,
    url: String,
    client: reqwest::Client,
}

/// Ends chromedriver and the browsers it started (its process group), also
/// when a test fails before closing its session.
impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.process.wait();
    }
}

/// Starts chromedriver, or says the browser tests did not run (no
/// variable) and returns `None`.
async fn driver() -> Option<Driver> {
    let Ok(path) = std::env::var(CHROMEDRIVER_VARIABLE) else {
        eprintln!("the browser tests did NOT run: set {CHROMEDRIVER_VARIABLE}=/usr/bin/chromedriver to run them");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port();
    let process = Command::new(&path)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("{CHROMEDRIVER_VARIABLE} is set but {path} cannot be started: {error}"));
    let driver = Driver { process, url: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new() };
    let started = Instant::now();
    loop {
        if let Ok(response) = driver.client.get(format!("{}/status", driver.url)).send().await {
            if let Ok(status) = response.json::<Value>().await {
                if status["value"]["ready"] == json!(true) {
                    return Some(driver);
                }
            }
        }
        assert!(started.elapsed() < Duration::from_millis(WAIT_MS), "chromedriver at {path} did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One browser session.
struct Browser<'d> {
    driver: &'d Driver,
    session: String,
}

impl Driver {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|error| panic!("chromedriver answers {path}: {error}"));
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_else(|error| panic!("chromedriver answers {path} in JSON: {error}"));
        assert!(status.is_success(), "WebDriver {path}: {status} {answer}");
        answer["value"].clone()
    }

    async fn browser(&self) -> Browser<'_> {
        let mut options = json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,1900"]});
        let binary = std::env::var("LEDGER_TEST_CHROMIUM")
            .ok()
            .or_else(|| std::path::Path::new("/usr/bin/chromium").exists().then(|| "/usr/bin/chromium".to_string()));
        if let Some(binary) = binary {
            options["binary"] = json!(binary);
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}});
        let session = self.call(reqwest::Method::POST, "/session", Some(capabilities)).await;
        let session = session["sessionId"].as_str().expect("a new session has an id").to_string();
        Browser { driver: self, session }
    }
}

impl Browser<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.driver.call(method, &format!("/session/{}{path}", self.session), body).await
    }

    async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// Runs `script` (a function body) with `args`; returns what it returns.
    async fn run(&self, script: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    async fn element(&self, css: &str) -> String {
        let found = self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        found[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("{css} is on the page")).to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/value"), Some(json!({"text": text}))).await;
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    /// Waits until `script` returns something other than null or false; returns it.
    async fn wait_for(&self, script: &str, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.run(script, json!([])).await;
            if !value.is_null() && value != json!(false) {
                return value;
            }
            if started.elapsed() > Duration::from_millis(WAIT_MS) {
                let body = self.run("return document.body.innerText;", json!([])).await;
                panic!("the page never showed {what}; it shows: {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self) -> Vec<u8> {
        let encoded = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("a screenshot is base64 text"))
            .expect("valid base64")
    }

    async fn sign_in(&self, token: &str) {
        self.type_into("#token", token).await;
        self.click("#sign-in-form button[type=submit]").await;
    }

    async fn close(self) {
        self.call(reqwest::Method::DELETE, "", None).await;
    }
}

// ---------------------------------------------------------------------------

/// Two donors, the donor's programme (which the other donor co-funds) and
/// a programme of the other donor only; payments in two months, cash and
/// in kind, one reversed; a signed checkpoint over all of it.
async fn funded_ledger(server: &TestServer) {
    server.register_donor(DONOR).await;
    server.register_donor(OTHER_DONOR).await;
    server.register_programme(PROGRAMME, "EUR", &["MA", "TN", "SN"]).await;
    server.register_programme(OTHER_PROGRAMME, "USD", &["MW", "MZ"]).await;
    server.commit_and_allocate(PROGRAMME, DONOR, "100000.00", &[("MA", "40000.00"), ("SN", "20000.00")]).await;
    server.commit_and_allocate(PROGRAMME, OTHER_DONOR, "5000.00", &[("TN", "5000.00")]).await;
    server.commit_and_allocate(OTHER_PROGRAMME, OTHER_DONOR, "9000.00", &[("MW", "9000.00")]).await;
    let officer = server.finance_officer.as_str();
    server.post_created(officer, "/v1/receipts", &receipt_body(PROGRAMME, DONOR, "60000.00")).await;
    for (index, (country, day, amount)) in
        [("MA", "2023-05-02", "350.00"), ("MA", "2023-06-10", "420.00"), ("SN", "2023-06-11", "300.00")].into_iter().enumerate()
    {
        let mut paid = cash_body((PROGRAMME, DONOR, country), &format!("{country}-WEB-{index}"), amount, ("3500", "MAD"));
        paid["paid_on"] = json!(day);
        if country == "SN" {
            paid["paid_currency"] = json!("XOF");
        }
        server.post_created(officer, "/v1/payments/cash", &paid).await;
    }
    let grant = in_kind_individual_body((PROGRAMME, OTHER_DONOR, "TN"), "TN-WEB-9", "800.00");
    server.post_created(officer, "/v1/grants/in-kind", &grant).await;
    let mistaken = cash_body((PROGRAMME, DONOR, "MA"), "MA-WEB-MISTAKE", "100.00", ("1000", "MAD"));
    let mistaken = server.post_created(officer, "/v1/payments/cash", &mistaken).await;
    server.post_created(officer, "/v1/reversals", &reversal_body(mistaken)).await;
    // The programme's latest funding entry is the other donor's.
    server.post_created(officer, "/v1/receipts", &receipt_body(PROGRAMME, OTHER_DONOR, "2500.00")).await;
    ledger_api::audit::create_checkpoint(&server.ledger, |_| {}).await.expect("a checkpoint is signed");
}

/// The figures of one tile as the page shows them.
const TILE_FIGURES: &str = r#"
    const tile = document.querySelector('.tile[data-programme="' + arguments[0] + '"]');
    if (!tile) { return null; }
    const figures = {};
    for (const element of tile.querySelectorAll('dl.figures [data-figure]')) { figures[element.dataset.figure] = element.textContent; }
    const countries = {};
    for (const row of tile.querySelectorAll('tr[data-country]')) {
        const cells = {};
        for (const cell of row.querySelectorAll('[data-figure]')) { cells[cell.dataset.figure] = cell.textContent; }
        countries[row.dataset.country] = cells;
    }
    const months = {};
    for (const row of tile.querySelectorAll('tr[data-month]')) { months[row.dataset.month] = row.querySelector('[data-figure=total]').textContent; }
    return {figures, countries, months, bars: tile.querySelectorAll('svg g[data-country] title').length};
"#;

const TILES_SHOWN: &str =
    "const tiles = document.querySelectorAll('.tile'); return tiles.length ? Array.from(tiles, t => t.dataset.programme) : null;";

/// Replaces `fetch` so that the answers of paths starting with `prefix`
/// have one character of `field` changed: a tampered answer.
const TAMPER: &str = r#"
    const [prefix, field] = arguments;
    if (!window.originalFetch) { window.originalFetch = window.fetch; }
    window.fetch = async (url, options) => {
        const response = await window.originalFetch(url, options);
        if (!String(url).startsWith(prefix)) { return response; }
        const body = await response.json();
        const text = body[field];
        if (typeof text === 'string') { body[field] = (text[0] === '0' ? '1' : '0') + text.slice(1); }
        return new Response(JSON.stringify(body), {status: 200, headers: {'content-type': 'application/json'}});
    };
"#;

const UNTAMPER: &str = "if (window.originalFetch) { window.fetch = window.originalFetch; }";

const PROOF_RESULT: &str = r#"
    const result = document.querySelector('.tile[data-programme="MOTUSE"] .proof-result');
    return result && (result.classList.contains('holds') || result.classList.contains('fails'))
        ? {holds: result.classList.contains('holds'), text: result.textContent} : null;
"#;

async fn check_in_browser(browser: &Browser<'_>) -> Value {
    browser
        .run(
            "document.querySelectorAll('.proof-result').forEach(r => { r.className = 'proof-result'; r.textContent = ''; });",
            json!([]),
        )
        .await;
    browser.click(".tile[data-programme=\"MOTUSE\"] .check-button").await;
    browser.wait_for(PROOF_RESULT, "the result of the check").await
}

fn status_text() -> &'static str {
    "const status = document.getElementById('status'); const loading = document.getElementById('messages').dataset.loading; \
     return status.hidden || status.textContent === '' || status.textContent === loading ? null : status.textContent;"
}

test_on_both_backends! {
    /// A donor signs in and sees its programme and only it, with the
    /// figures of the balance endpoint, checks an entry in the browser
    /// (and sees a tampered proof or signature fail), and its token is
    /// never in the page's address, a cookie or the server's log.
    async fn a_donor_sees_its_programmes_and_checks_an_entry_in_the_browser(database: TestDatabase) {
        server_log();
        let Some(driver) = driver().await else { return };
        let server = TestServer::start_days_ahead(&database, 1).await;
        funded_ledger(&server).await;
        let token = server.donor_token(DONOR).await;
        let browser = driver.browser().await;
        browser.open(&server.url("/")).await;
        browser.sign_in(&token).await;

        let shown = browser.wait_for(TILES_SHOWN, "the programmes").await;
        assert_eq!(shown, json!([PROGRAMME]), "a donor sees the programmes it funds, and only those");
        let tile = browser.run(TILE_FIGURES, json!([PROGRAMME])).await;
        let balance = server.get(&token, &format!("/v1/programmes/{PROGRAMME}/balance")).await;
        assert_eq!(balance.status, 200, "{}", balance.body);
        let balance = balance.json();
        for (figure, expected) in [
            ("committed", &balance["committed"]),
            ("received", &balance["received"]),
            ("allocated", &balance["allocated"]),
            ("disbursed", &balance["disbursed"]["total"]),
            ("available", &balance["available"]),
        ] {
            assert_eq!(tile["figures"][figure], *expected, "{figure} is the balance endpoint's: {tile}");
        }
        assert_eq!(balance["beneficiaries_reached"], "fewer than 5", "the small-number rule holds for donors");
        assert_eq!(tile["figures"]["beneficiaries_reached"], "fewer than 5");
        assert_eq!(tile["figures"]["committed"], "105000.00", "the programme's totals, every donor together");
        for country in balance["by_country"].as_array().expect("by_country is a list") {
            let code = country["country"].as_str().expect("a country code");
            let shown = &tile["countries"][code];
            assert_eq!(shown["allocated"], country["allocated"], "{code}: {tile}");
            assert_eq!(shown["disbursed"], country["disbursed"]["total"], "{code}");
            assert_eq!(shown["available"], country["available"], "{code}");
            assert_eq!(shown["beneficiaries_reached"], json!(country["beneficiaries_reached"].to_string().trim_matches('"')), "{code}");
        }
        assert_eq!(tile["bars"], json!(balance["by_country"].as_array().map(Vec::len)), "a bar per country");
        // The reversed payment counts nowhere; each month is what was paid in it.
        assert_eq!(tile["months"], json!({"2023-05": "350.00", "2023-06": "1520.00"}), "{tile}");
        assert_eq!(balance["disbursed"]["total"], "1870.00", "the months add up to what was disbursed");

        let entry = browser.run("return document.querySelector('.tile[data-programme=MOTUSE] .entry').textContent;", json!([])).await;
        assert!(entry.as_str().is_some_and(|text| text.starts_with("Receipt of 60000.00 EUR from EU-AMIF")), "a donor checks its own entry: {entry}");
        let holds = check_in_browser(&browser).await;
        assert_eq!(holds["holds"], json!(true), "the entry's proof and checkpoint verify in the browser: {holds}");
        assert!(holds["text"].as_str().is_some_and(|text| text.starts_with("Verified in your browser")), "{holds}");

        browser.run(TAMPER, json!(["/v1/proofs/inclusion", "event_hash"])).await;
        let tampered = check_in_browser(&browser).await;
        assert_eq!(tampered["holds"], json!(false), "a tampered proof fails: {tampered}");
        assert!(tampered["text"].as_str().is_some_and(|text| text.contains("the inclusion proof does not lead to the signed root")), "{tampered}");
        browser.run(UNTAMPER, json!([])).await;
        browser.run(TAMPER, json!(["/v1/checkpoints/", "signature"])).await;
        let forged = check_in_browser(&browser).await;
        assert_eq!(forged["holds"], json!(false), "a tampered checkpoint fails: {forged}");
        assert!(forged["text"].as_str().is_some_and(|text| text.contains("signature does not verify")), "{forged}");
        browser.run(UNTAMPER, json!([])).await;
        assert_eq!(check_in_browser(&browser).await["holds"], json!(true), "the genuine answers verify again");

        let chain = browser.run("return document.querySelector('[data-checkpoint=tree_size]').textContent;", json!([])).await;
        assert_eq!(chain, json!(server.head_seq().await.to_string()), "the latest checkpoint is shown");

        let location = browser.run("return window.location.href;", json!([])).await;
        let location = location.as_str().expect("the location is text");
        assert!(!location.contains(&token), "the token is not in the page's address: {location}");
        assert_eq!(location, server.url("/"), "signing in does not change the address");
        assert_eq!(browser.run("return document.cookie;", json!([])).await, json!(""), "no cookie");
        assert!(!browser.run("return document.documentElement.outerHTML;", json!([])).await.to_string().contains(&token), "nor in the page");

        let png = browser.screenshot().await;
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
        if let Ok(path) = std::env::var("LEDGER_WEB_SCREENSHOT") {
            std::fs::write(&path, &png).unwrap_or_else(|error| panic!("cannot write {path}: {error}"));
        }
        // On a phone's width, nothing runs off the side of the page.
        browser.call(reqwest::Method::POST, "/window/rect", Some(json!({"width": 390, "height": 844}))).await;
        let widths = browser.wait_for("return window.innerWidth <= 500 ? [document.documentElement.scrollWidth, document.documentElement.clientWidth] : null;", "a phone's width").await;
        assert!(widths[0].as_u64() <= widths[1].as_u64(), "no horizontal scrolling on a phone: {widths}");
        browser.close().await;
        server.stop().await;
        let log = server_log();
        assert!(log.contains("/page/programmes"), "the server's requests are logged");
        assert!(!log.contains(&token), "the token is never in the server's log");
    }
}

test_on_both_backends! {
    /// Other roles see every programme, live; a wrong token, a revoked
    /// token and a network failure each give a plain message; the page
    /// speaks French when asked.
    async fn other_roles_see_every_programme_and_bad_tokens_get_a_plain_message(database: TestDatabase) {
        let Some(driver) = driver().await else { return };
        let server = TestServer::start(&database).await;
        funded_ledger(&server).await;
        let browser = driver.browser().await;
        browser.open(&server.url("/")).await;
        browser.sign_in(&server.auditor).await;
        let shown = browser.wait_for(TILES_SHOWN, "the programmes").await;
        assert_eq!(shown, json!([PROGRAMME, OTHER_PROGRAMME]), "an auditor sees every programme");
        let tile = browser.run(TILE_FIGURES, json!([OTHER_PROGRAMME])).await;
        let balance = server.get(&server.auditor, &format!("/v1/programmes/{OTHER_PROGRAMME}/balance")).await.json();
        assert_eq!(tile["figures"]["committed"], balance["committed"], "{tile}");
        assert_eq!(tile["figures"]["beneficiaries_reached"], "0", "exact counts for other roles");
        // Live monthly sums (summed by the database) are the donor's folded ones.
        let tile = browser.run(TILE_FIGURES, json!([PROGRAMME])).await;
        assert_eq!(tile["months"], json!({"2023-05": "350.00", "2023-06": "1520.00"}), "{tile}");
        let entry = browser.run("return document.querySelector('.tile[data-programme=MOTUSE] .entry').textContent;", json!([])).await;
        assert!(entry.as_str().is_some_and(|text| text.starts_with("Receipt of 2500.00 EUR from DK-MFA")), "the latest funding entry of any donor: {entry}");
        assert_eq!(check_in_browser(&browser).await["holds"], json!(true), "an auditor's check holds too");
        browser.click("#sign-out").await;

        browser.sign_in("not-a-token").await;
        let message = browser.wait_for(status_text(), "a message").await;
        assert_eq!(message, "This token was not accepted: it is wrong, or it has been revoked.");

        let token = server.donor_token(DONOR).await;
        ledger_api::tokens::revoke(&server.ledger.store, &format!("donor-{DONOR}")).await.expect("the token is revoked");
        browser.run("document.getElementById('status').hidden = true;", json!([])).await;
        browser.sign_in(&token).await;
        let message = browser.wait_for(status_text(), "a message").await;
        assert_eq!(message, "This token was not accepted: it is wrong, or it has been revoked.", "a revoked token");
        assert_eq!(browser.run("return document.querySelectorAll('.tile').length;", json!([])).await, json!(0));

        browser.run("window.fetch = () => Promise.reject(new TypeError('offline'));", json!([])).await;
        browser.run("document.getElementById('status').hidden = true;", json!([])).await;
        browser.sign_in(&server.auditor).await;
        let message = browser.wait_for(status_text(), "a message").await;
        assert_eq!(message, "The ledger could not be reached. Check the connection and try again.");

        browser.open(&server.url("/?lang=fr")).await;
        let french = browser.run("return [document.documentElement.lang, document.querySelector('label[for=token]').textContent];", json!([])).await;
        assert_eq!(french, json!(["fr", "Jeton d'accès"]));
        browser.close().await;
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A server that starts on a ledger some donor holds a token for folds
    /// the donors' day (the end of yesterday, UTC) before any donor asks;
    /// the day's first donor page is then answered from that fold, without
    /// folding the events again. (No browser: the page's HTML over HTTP.)
    async fn the_donors_day_is_folded_when_the_server_starts_before_any_donor_asks(database: TestDatabase) {
        server_log();
        let first = TestServer::start(&database).await;
        funded_ledger(&first).await;
        let token = first.donor_token(DONOR).await;
        let head_hash: String = sqlx::query_scalar("SELECT hash FROM events ORDER BY seq DESC LIMIT 1")
            .fetch_one(first.ledger.store.pool())
            .await
            .unwrap();
        let folds_of_this_day = || {
            let log = server_log();
            let folds = log.lines().filter(|line| line.contains("folded the events for figures as of a past point"));
            folds.filter(|line| line.contains(&head_hash)).count()
        };
        assert_eq!(folds_of_this_day(), 0, "nothing is folded while no donor token is on record at start");
        // The next day, a server starts on this ledger.
        let server = TestServer::start_beside_days_ahead(&database, &first, 1).await;
        let started = std::time::Instant::now();
        while folds_of_this_day() == 0 {
            assert!(started.elapsed() < Duration::from_millis(WAIT_MS), "the donors' day was never folded ahead");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let page = server.get(&token, "/page/programmes").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains(PROGRAMME), "the donor's programme is shown");
        let balance = server.get(&token, &format!("/v1/programmes/{PROGRAMME}/balance")).await;
        assert_eq!(balance.status, 200, "{}", balance.body);
        assert_eq!(folds_of_this_day(), 1, "the donor's page and balance were answered from the fold made ahead");
        server.stop().await;
        first.stop().await;
    }
}

test_on_both_backends! {
    /// The page and its assets carry the headers that keep it self-contained.
    async fn the_page_is_served_by_the_ledger_with_a_strict_policy(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        let page = server.client.get(server.url("/")).send().await.expect("the page answers");
        assert_eq!(page.status(), 200);
        let policy = page.headers()["content-security-policy"].to_str().expect("ASCII").to_string();
        assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"), "{policy}");
        let html = page.text().await.expect("a body");
        assert!(!html.contains("http://") && !html.contains("https://"), "nothing is loaded from elsewhere");
        let script_path = html.split("src=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("the page loads its script").to_string();
        let script = server.client.get(server.url(&script_path)).send().await.expect("the script answers");
        assert_eq!(script.headers()["cache-control"], "public, max-age=31536000, immutable", "a versioned asset is immutable");
        let etag = script.headers()["etag"].clone();
        let again = server.client.get(server.url("/page/app.js")).header("if-none-match", etag).send().await.expect("answers");
        assert_eq!(again.status(), 304, "an unchanged asset is not sent again");
        let fragment = server.client.get(server.url("/page/programmes")).send().await.expect("answers");
        assert_eq!(fragment.status(), 401, "the programmes need a token");
        let french = server.client.get(server.url("/")).header("accept-language", "fr-SN,fr;q=0.9").send().await.expect("answers");
        assert!(french.text().await.expect("a body").starts_with("<!DOCTYPE html>\n<html lang=\"fr\">"));
        let wrong = server.client.get(server.url("/?lang=de")).send().await.expect("answers");
        assert_eq!(wrong.status(), 400, "an unknown language is refused");
        server.stop().await;
    }
}
