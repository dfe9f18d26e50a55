//! The page's HTML, built as text: every value goes through [`escape`].
//! Charts are inline SVG, each with a `<title>`, and the same figures as a
//! table beside it, for screen readers and for copying.

use std::collections::BTreeMap;
use std::fmt::Write;

use ledger_core::domain::Currency;
use projections::balances::{ProgrammeBalance, Reached};
use rust_decimal::Decimal;

use super::strings::{Lang, Strings, fill};

/// Text made safe for HTML content and attribute values (double-quoted).
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The page itself: the sign-in form and an empty place for the programmes.
/// The messages the script shows are attributes of `#messages`, so that
/// they stay in the one table of strings.
pub fn shell(lang: Lang, script_etag: &str, style_etag: &str) -> String {
    let s = lang.strings();
    let other = match lang {
        Lang::En => Lang::Fr,
        Lang::Fr => Lang::En,
    };
    let messages = [
        ("unauthorized", s.unauthorized),
        ("refused", s.refused),
        ("network", s.network),
        ("server-error", s.server_error),
        ("loading", s.loading),
        ("checking", s.checking),
        ("proof-holds", s.proof_holds),
        ("proof-fails", s.proof_fails),
        ("reason-key", s.reason_key),
        ("reason-signature", s.reason_signature),
        ("reason-proof", s.reason_proof),
        ("reason-unsupported", s.reason_unsupported),
    ];
    let mut data = String::new();
    for (name, text) in messages {
        let _ = write!(data, " data-{name}=\"{}\"", escape(text));
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="stylesheet" href="/page/app.css?v={style_etag}">
<script src="/page/app.js?v={script_etag}" defer></script>
</head>
<body>
<header>
<h1>{title}</h1>
<nav><a href="/?lang={other_code}" hreflang="{other_code}" lang="{other_code}">{other_name}</a></nav>
</header>
<main>
<div id="messages" hidden{data}></div>
<noscript><p class="message">{noscript}</p></noscript>
<section id="sign-in" aria-labelledby="sign-in-heading">
<h2 id="sign-in-heading">{sign_in}</h2>
<p>{intro}</p>
<form id="sign-in-form" method="post" action="/" autocomplete="off">
<label for="token">{token_label}</label>
<input id="token" type="password" autocomplete="off" spellcheck="false" required aria-describedby="token-help">
<p id="token-help" class="help">{token_help}</p>
<button type="submit">{sign_in}</button>
</form>
</section>
<p id="status" class="message" role="alert" hidden></p>
<div id="signed-in" hidden>
<p><button type="button" id="sign-out">{sign_out}</button></p>
<div id="content"></div>
</div>
</main>
</body>
</html>
"#,
        lang = lang.code(),
        title = escape(s.title),
        other_code = other.code(),
        other_name = escape(s.other_language),
        noscript = escape(s.noscript),
        sign_in = escape(s.sign_in),
        intro = escape(s.intro),
        token_label = escape(s.token_label),
        token_help = escape(s.token_help),
        sign_out = escape(s.sign_out),
    )
}

/// A funding entry the page offers to check in the browser.
#[derive(Debug)]
pub struct CheckableEntry {
    pub seq: u64,
    pub kind: EntryKind,
    pub donor: String,
    pub amount: String,
    pub currency: String,
    pub date: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Commitment,
    Receipt,
}

/// Disbursed per month (`YYYY-MM`), in minor units: (cash, in kind).
pub type Monthly = BTreeMap<String, (i128, i128)>;

/// One programme's tile and what the page shows about it.
#[derive(Debug)]
pub struct Tile {
    pub name: String,
    pub balance: ProgrammeBalance,
    pub monthly: Monthly,
    /// The entry to check, and the size of the checkpoint it is checked against.
    pub check: Option<(CheckableEntry, u64)>,
}

/// The chain's state as the server verified it.
#[derive(Debug)]
pub enum ChainState {
    Verified { events: u64, head_hash: String },
    Broken(String),
}

/// The latest signed checkpoint.
#[derive(Debug)]
pub struct CheckpointSummary {
    pub tree_size: u64,
    pub root_hash: String,
    pub created_at: String,
    pub key_id: String,
}

/// Where the figures stand.
#[derive(Debug)]
pub enum Standing {
    Day(String),
    Seq(u64),
}

/// Everything the programmes fragment shows.
#[derive(Debug)]
pub struct Fragment {
    pub standing: Standing,
    pub tiles: Vec<Tile>,
    /// Programmes without figures at the point (registered after it).
    pub not_yet: Vec<String>,
    pub chain: ChainState,
    pub checkpoint: Option<CheckpointSummary>,
}

fn reached_text(s: &Strings, reached: Reached) -> String {
    match reached {
        Reached::Exact(count) => count.to_string(),
        Reached::FewerThan(threshold) => fill(s.fewer_than, &[("n", &threshold.to_string())]),
    }
}

/// Parts per thousand of `part` in `whole` (0 when `whole` is not positive).
fn per_mille(part: &str, whole: &str) -> i64 {
    let (Ok(part), Ok(whole)) = (part.parse::<Decimal>(), whole.parse::<Decimal>()) else { return 0 };
    if whole <= Decimal::ZERO || part <= Decimal::ZERO {
        return 0;
    }
    let ratio = (part * Decimal::from(1000) / whole).round();
    i64::try_from(ratio.mantissa() / 10_i128.pow(ratio.scale())).unwrap_or(0).clamp(0, 1000)
}

fn format_minor(minor: i128, scale: u32) -> String {
    Decimal::from_i128_with_scale(minor, scale).to_string()
}

/// The fragment the page inserts after sign-in.
pub fn fragment(lang: Lang, fragment: &Fragment) -> String {
    let s = lang.strings();
    let mut html = String::new();
    let standing = match &fragment.standing {
        Standing::Day(day) => fill(s.as_of_day, &[("day", day)]),
        Standing::Seq(seq) => fill(s.as_of_seq, &[("seq", &seq.to_string())]),
    };
    let _ = write!(html, "<h2>{}</h2>\n<p class=\"standing\" id=\"standing\">{}</p>\n", escape(s.programmes), escape(&standing));
    if fragment.tiles.is_empty() && fragment.not_yet.is_empty() {
        let _ = writeln!(html, "<p class=\"message\" id=\"no-programmes\">{}</p>", escape(s.no_programmes));
    }
    let day = match &fragment.standing {
        Standing::Day(day) => day.clone(),
        Standing::Seq(seq) => seq.to_string(),
    };
    for code in &fragment.not_yet {
        let text = fill(s.not_yet_registered, &[("programme", code), ("day", &day)]);
        let _ = writeln!(html, "<p class=\"message\" data-not-yet=\"{}\">{}</p>", escape(code), escape(&text));
    }
    html.push_str("<div class=\"tiles\">\n");
    for tile in &fragment.tiles {
        let scale = Currency::parse(&tile.balance.currency).map_or(2, |currency| currency.minor_units());
        tile_html(&mut html, s, tile, scale);
    }
    html.push_str("</div>\n");
    chain_html(&mut html, s, fragment);
    html
}

fn tile_html(html: &mut String, s: &Strings, tile: &Tile, scale: u32) {
    let balance = &tile.balance;
    let code = escape(&balance.programme);
    let currency = escape(&balance.currency);
    let _ = write!(
        html,
        "<section class=\"tile\" data-programme=\"{code}\" aria-labelledby=\"programme-{code}\">\n\
         <h3 id=\"programme-{code}\">{name} <span class=\"code\">{code}</span></h3>\n<dl class=\"figures\">\n",
        name = escape(&tile.name),
    );
    let figures = &balance.figures;
    for (label, name, value) in [
        (s.committed, "committed", &figures.committed),
        (s.received, "received", &figures.received),
        (s.allocated, "allocated", &figures.allocated),
        (s.disbursed, "disbursed", &figures.disbursed.total),
        (s.available, "available", &figures.available),
    ] {
        let _ = writeln!(
            html,
            "<div><dt>{}</dt><dd><span data-figure=\"{name}\">{}</span> {currency}</dd></div>",
            escape(label),
            escape(value)
        );
    }
    let _ = write!(
        html,
        "<div><dt>{}</dt><dd><span data-figure=\"beneficiaries_reached\">{}</span></dd></div>\n</dl>\n",
        escape(s.reached),
        escape(&reached_text(s, balance.beneficiaries_reached))
    );
    country_chart(html, s, balance);
    month_chart(html, s, balance, &tile.monthly, scale);
    check_html(html, s, balance, tile.check.as_ref());
    html.push_str("</section>\n");
}

const CHART_WIDTH: i64 = 320;
const BAR_HEIGHT: i64 = 18;
const ROW_HEIGHT: i64 = 28;
const LABEL_WIDTH: i64 = 40;

fn country_chart(html: &mut String, s: &Strings, balance: &ProgrammeBalance) {
    let code = escape(&balance.programme);
    let _ = writeln!(html, "<h4 id=\"countries-{code}\">{}</h4>", escape(s.by_country));
    if balance.by_country.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", escape(s.nothing_disbursed));
        return;
    }
    let rows = i64::try_from(balance.by_country.len()).unwrap_or(0);
    let bar_width = CHART_WIDTH - LABEL_WIDTH;
    // Bars in proportion to the country that received most.
    let largest = balance
        .by_country
        .iter()
        .filter_map(|country| country.disbursed.total.parse::<Decimal>().ok())
        .max()
        .unwrap_or_default()
        .to_string();
    let _ = writeln!(
        html,
        "<svg class=\"chart\" role=\"img\" aria-labelledby=\"countries-{code}\" viewBox=\"0 0 {CHART_WIDTH} {}\" width=\"100%\">",
        rows * ROW_HEIGHT
    );
    for (index, country) in balance.by_country.iter().enumerate() {
        let y = i64::try_from(index).unwrap_or(0) * ROW_HEIGHT;
        let filled = match per_mille(&country.disbursed.total, &largest) * bar_width / 1000 {
            0 if per_mille(&country.disbursed.total, "1") > 0 => 1,
            width => width,
        };
        let title = fill(
            s.country_bar,
            &[
                ("country", &country.country),
                ("disbursed", &country.disbursed.total),
                ("allocated", &country.allocated),
                ("currency", &balance.currency),
            ],
        );
        let _ = writeln!(
            html,
            "<g data-country=\"{country_code}\"><title>{title}</title>\
             <text x=\"0\" y=\"{text_y}\" class=\"label\">{country_code}</text>\
             <rect x=\"{LABEL_WIDTH}\" y=\"{y}\" width=\"{filled}\" height=\"{BAR_HEIGHT}\" class=\"bar\"/></g>",
            country_code = escape(&country.country),
            title = escape(&title),
            text_y = y + BAR_HEIGHT - 4,
        );
    }
    html.push_str("</svg>\n");
    let _ = writeln!(
        html,
        "<details><summary>{}</summary><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        escape(s.figures_table),
        escape(s.country),
        escape(s.allocated),
        escape(s.disbursed),
        escape(s.available),
        escape(s.reached)
    );
    for country in &balance.by_country {
        let _ = writeln!(
            html,
            "<tr data-country=\"{c}\"><th scope=\"row\">{c}</th><td data-figure=\"allocated\">{}</td><td data-figure=\"disbursed\">{}</td>\
             <td data-figure=\"available\">{}</td><td data-figure=\"beneficiaries_reached\">{}</td></tr>",
            escape(&country.allocated),
            escape(&country.disbursed.total),
            escape(&country.available),
            escape(&reached_text(s, country.beneficiaries_reached)),
            c = escape(&country.country),
        );
    }
    html.push_str("</tbody></table></details>\n");
}

const MONTH_CHART_HEIGHT: i64 = 120;
const MONTH_LABEL_HEIGHT: i64 = 16;

fn month_chart(html: &mut String, s: &Strings, balance: &ProgrammeBalance, monthly: &Monthly, scale: u32) {
    let code = escape(&balance.programme);
    let _ = writeln!(html, "<h4 id=\"months-{code}\">{}</h4>", escape(s.by_month));
    if monthly.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", escape(s.nothing_disbursed));
        return;
    }
    let largest = monthly.values().map(|(cash, in_kind)| cash + in_kind).max().unwrap_or(0).max(1);
    let months = i64::try_from(monthly.len()).unwrap_or(1);
    let slot = (CHART_WIDTH / months).max(8);
    let bar = (slot * 3 / 4).max(4);
    let width = slot * months;
    let _ = writeln!(
        html,
        "<svg class=\"chart\" role=\"img\" aria-labelledby=\"months-{code}\" viewBox=\"0 0 {width} {}\" width=\"100%\">",
        MONTH_CHART_HEIGHT + MONTH_LABEL_HEIGHT
    );
    let height_of = |minor: i128| i64::try_from(minor.max(0) * i128::from(MONTH_CHART_HEIGHT) / largest).unwrap_or(0);
    for (index, (month, (cash, in_kind))) in monthly.iter().enumerate() {
        let x = i64::try_from(index).unwrap_or(0) * slot;
        let (cash_height, in_kind_height) = (height_of(*cash), height_of(*in_kind));
        let title = fill(
            s.month_bar,
            &[
                ("month", month),
                ("total", &format_minor(cash + in_kind, scale)),
                ("currency", &balance.currency),
                ("cash", &format_minor(*cash, scale)),
                ("in_kind", &format_minor(*in_kind, scale)),
            ],
        );
        let _ = write!(
            html,
            "<g><title>{}</title><rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{cash_height}\" class=\"bar\"/>\
             <rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{in_kind_height}\" class=\"bar-in-kind\"/>",
            escape(&title),
            MONTH_CHART_HEIGHT - cash_height,
            MONTH_CHART_HEIGHT - cash_height - in_kind_height,
        );
        // Label the first month, the last and every sixth: the table has them all.
        if index == 0 || index + 1 == monthly.len() || index % 6 == 0 {
            let _ = write!(
                html,
                "<text x=\"{x}\" y=\"{}\" class=\"label\">{}</text>",
                MONTH_CHART_HEIGHT + MONTH_LABEL_HEIGHT - 3,
                escape(month)
            );
        }
        html.push_str("</g>\n");
    }
    html.push_str("</svg>\n");
    let _ = write!(
        html,
        "<p class=\"legend\"><span class=\"swatch bar\"></span>{} <span class=\"swatch bar-in-kind\"></span>{}</p>\n\
         <details><summary>{}</summary><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>\n",
        escape(s.cash),
        escape(s.in_kind),
        escape(s.figures_table),
        escape(s.month),
        escape(s.cash),
        escape(s.in_kind),
        escape(s.total)
    );
    for (month, (cash, in_kind)) in monthly {
        let _ = writeln!(
            html,
            "<tr data-month=\"{m}\"><th scope=\"row\">{m}</th><td data-figure=\"cash\">{}</td><td data-figure=\"in_kind\">{}</td><td data-figure=\"total\">{}</td></tr>",
            format_minor(*cash, scale),
            format_minor(*in_kind, scale),
            format_minor(cash + in_kind, scale),
            m = escape(month),
        );
    }
    html.push_str("</tbody></table></details>\n");
}

fn check_html(html: &mut String, s: &Strings, balance: &ProgrammeBalance, check: Option<&(CheckableEntry, u64)>) {
    let code = escape(&balance.programme);
    let _ = write!(html, "<div class=\"check\">\n<h4>{}</h4>\n<p>{}</p>\n", escape(s.check_heading), escape(s.check_intro));
    match check {
        None => {
            let _ = writeln!(html, "<p class=\"nothing-to-check\">{}</p>", escape(s.nothing_to_check));
        }
        Some((entry, size)) => {
            let kind = match entry.kind {
                EntryKind::Commitment => s.commitment,
                EntryKind::Receipt => s.receipt,
            };
            let text = fill(
                s.entry,
                &[
                    ("kind", kind),
                    ("amount", &entry.amount),
                    ("currency", &entry.currency),
                    ("donor", &entry.donor),
                    ("date", &entry.date),
                    ("seq", &entry.seq.to_string()),
                ],
            );
            let _ = write!(
                html,
                "<p class=\"entry\" id=\"entry-{code}\">{}</p>\n\
                 <button type=\"button\" class=\"check-button\" data-seq=\"{}\" data-size=\"{size}\" aria-describedby=\"entry-{code}\">{}</button>\n\
                 <p class=\"proof-result\" role=\"status\" aria-live=\"polite\"></p>\n",
                escape(&text),
                entry.seq,
                escape(s.check_button)
            );
        }
    }
    html.push_str("</div>\n");
}

fn chain_html(html: &mut String, s: &Strings, fragment: &Fragment) {
    let _ = write!(
        html,
        "<section class=\"chain\" aria-labelledby=\"chain-heading\">\n<h2 id=\"chain-heading\">{}</h2>\n",
        escape(s.chain)
    );
    match &fragment.chain {
        ChainState::Verified { events, head_hash } => {
            let _ = writeln!(
                html,
                "<dl class=\"figures\"><div><dt>{}</dt><dd data-chain=\"events\">{events}</dd></div>\
                 <div><dt>{}</dt><dd class=\"hash\" data-chain=\"head_hash\">{}</dd></div></dl>",
                escape(s.verified_events),
                escape(s.head_hash),
                escape(head_hash)
            );
        }
        ChainState::Broken(reason) => {
            let _ = writeln!(
                html,
                "<p class=\"message\" data-chain=\"broken\">{}</p>",
                escape(&fill(s.chain_broken, &[("reason", reason)]))
            );
        }
    }
    let _ = writeln!(html, "<h3>{}</h3>", escape(s.checkpoint));
    match &fragment.checkpoint {
        None => {
            let _ = writeln!(html, "<p data-checkpoint=\"none\">{}</p>", escape(s.no_checkpoint));
        }
        Some(checkpoint) => {
            let _ = write!(
                html,
                "<dl class=\"figures\"><div><dt>{}</dt><dd data-checkpoint=\"tree_size\">{}</dd></div>\
                 <div><dt>{}</dt><dd class=\"hash\" data-checkpoint=\"root_hash\">{}</dd></div>\
                 <div><dt>{}</dt><dd data-checkpoint=\"created_at\">{}</dd></div>\
                 <div><dt>{}</dt><dd class=\"hash\" data-checkpoint=\"key_id\">{}</dd></div></dl>\n\
                 <p class=\"downloads\"><button type=\"button\" data-download=\"json\">{}</button> \
                 <button type=\"button\" data-download=\"note\">{}</button></p>\n",
                escape(s.checkpoint_size),
                checkpoint.tree_size,
                escape(s.root_hash),
                escape(&checkpoint.root_hash),
                escape(s.signed_at),
                escape(&checkpoint.created_at),
                escape(s.key_id),
                escape(&checkpoint.key_id),
                escape(s.download_json),
                escape(s.download_note)
            );
        }
    }
    html.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_markup_character_is_escaped() {
        assert_eq!(escape(r#"<a href="x" title='y'>&</a>"#), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
    }

    #[test]
    fn a_bar_is_the_share_of_what_was_allocated() {
        assert_eq!(per_mille("250.00", "1000.00"), 250);
        assert_eq!(per_mille("0", "1000.00"), 0);
        assert_eq!(per_mille("5", "0"), 0);
        assert_eq!(per_mille("1", "3"), 333);
    }
}
