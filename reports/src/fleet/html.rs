//! The fleet report as one HTML file with no external assets: totals, a bar chart of the
//! verdicts (inline SVG), the hosts sharing a blocker, and a table of hosts that sorts on a
//! click of its header (a small inline script; without it the table is in report order).
use std::fmt::Write;

use super::{identity_line, FleetReport};
use crate::render::escape_markup as e;

const CSS: &str = r#"
:root { --certified:#1a7f37; --compatible:#2da44e; --untested:#8c959f; --unsupported:#cf222e;
        --failed:#8250df; --line:#d0d7de; --bg:#f6f8fa; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color:#1f2328; margin:0 auto; max-width:1200px; padding:24px; }
h1 { font-size: 26px; margin: 0 0 12px; }
h2 { font-size: 20px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); } td.num { text-align: right; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
.c { font-weight: 600; }
.c-certified { color: var(--certified); } .c-compatible { color: var(--compatible); }
.c-untested { color: var(--untested); } .c-unsupported { color: var(--unsupported); }
.c-failed { color: var(--failed); }
.flag { display:inline-block; border:1px solid #9a6700; color:#9a6700; border-radius:10px; padding:0 6px; font-size:12px; }
ul { margin: 0; padding-left: 18px; }
svg text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: #1f2328; }
footer { margin-top: 32px; color:#57606a; font-size: 12px; }
"#;

const SCRIPT: &str = r#"
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (r) { var c = r.cells[col]; return c.getAttribute("data-sort") || c.textContent; };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        var d = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"#;

/// The rank of a class for sorting: certified first, failed last.
fn rank(class: &str) -> usize {
    super::CLASSES
        .iter()
        .position(|c| *c == class)
        .unwrap_or(super::CLASSES.len())
}

/// Renders `r` as a single HTML page.
pub fn render(r: &FleetReport) -> String {
    let mut o = String::new();
    let title = format!("hvcert fleet: {}", r.totals_line());
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        e(&title),
        e(&title)
    );
    if r.provisional > 0 || r.mismatched_inputs > 0 {
        let _ = writeln!(
            o,
            "<p>{} provisional verdict(s); {} host(s) whose inputs describe two machines.</p>",
            r.provisional, r.mismatched_inputs
        );
    }
    chart(&mut o, r);
    if !r.groups.is_empty() {
        o.push_str("<section id=\"groups\">\n<h2>Shared blockers</h2>\n<table>\n<thead><tr><th>Blocker</th><th>Remedy</th><th>Hosts</th></tr></thead>\n<tbody>\n");
        for g in &r.groups {
            let _ = writeln!(
                o,
                "<tr><td><b>{}</b>: {}</td><td>{}</td><td data-count=\"{}\">{}</td></tr>",
                e(&g.fact),
                e(&g.message),
                e(g.remedy.as_deref().unwrap_or("")),
                g.hosts.len(),
                e(&g.hosts.join(", "))
            );
        }
        o.push_str("</tbody>\n</table>\n</section>\n");
    }
    o.push_str("<section id=\"hosts\">\n<h2>Hosts</h2>\n<table class=\"sortable\">\n<thead><tr><th>Host</th><th>Vendor</th><th>Product</th><th>CPU</th><th>Chipset</th><th>Verdict</th><th>Score</th><th>Blockers and remedies</th></tr></thead>\n<tbody>\n");
    for h in &r.hosts {
        let id = &h.identity;
        let mut verdict = format!("<span class=\"c c-{}\">{}</span>", e(&h.class), e(&h.label));
        if h.mismatched_inputs {
            verdict.push_str(" <span class=\"flag\" title=\"CPUID and DMI disagree about the CPU\">two machines?</span>");
        }
        let mut issues = String::new();
        if let Some(err) = &h.error {
            let _ = write!(issues, "<b>error</b>: {}", e(err));
        } else if !h.blockers.is_empty() || !h.warnings.is_empty() {
            issues.push_str("<ul>");
            for (lvl, i) in h
                .blockers
                .iter()
                .map(|i| ("blocker", i))
                .chain(h.warnings.iter().map(|i| ("warning", i)))
            {
                let _ = write!(
                    issues,
                    "<li>{lvl}: <b>{}</b>: {}",
                    e(&i.fact),
                    e(&i.message)
                );
                if let Some(rem) = &i.remedy {
                    let _ = write!(issues, "<br><i>remedy</i>: {}", e(rem));
                }
                issues.push_str("</li>");
            }
            issues.push_str("</ul>");
        }
        let cell = |v: &Option<String>| e(v.as_deref().unwrap_or(""));
        let _ = writeln!(
            o,
            "<tr data-class=\"{}\" title=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td data-sort=\"{}\">{verdict}</td><td class=\"num\">{}</td><td>{issues}</td></tr>",
            e(&h.class),
            e(&identity_line(id)),
            e(&h.name),
            cell(&id.vendor),
            cell(&id.product),
            cell(&id.cpu),
            cell(&id.chipset),
            rank(&h.class),
            h.score.map_or(String::new(), |s| s.to_string()),
        );
    }
    o.push_str("</tbody>\n</table>\n</section>\n");
    let _ = write!(
        o,
        "<footer>Fleet schema {} · generated by hvcert {} on {}</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        e(&r.schema),
        e(&r.version),
        e(&r.date)
    );
    o
}

/// One horizontal bar per verdict class (and failed hosts), scaled to the largest.
fn chart(o: &mut String, r: &FleetReport) {
    let totals = r.totals_in_order();
    let max = totals.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let (label_w, bar_w, value_w, row_h, top) = (110.0, 480.0, 60.0, 24.0, 6.0);
    let width = label_w + bar_w + value_w;
    let height = top * 2.0 + row_h * totals.len() as f64;
    let _ = writeln!(
        o,
        "<section id=\"chart\">\n<h2>Verdicts</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"100%\" style=\"max-width:{width}px\" aria-labelledby=\"chart-title\">\n<title id=\"chart-title\">Hosts per verdict</title>"
    );
    for (i, (class, n)) in totals.iter().enumerate() {
        let y = top + row_h * i as f64;
        let w = if *n == 0 {
            0.0
        } else {
            (*n as f64 / max * bar_w).max(1.0)
        };
        let _ = writeln!(
            o,
            "<g data-class=\"{c}\"><title>{c}: {n}</title><text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{c}</text>\
             <rect x=\"{label_w}\" y=\"{:.0}\" width=\"{w:.1}\" height=\"{:.0}\" rx=\"2\" fill=\"var(--{c}, #57606a)\"/>\
             <text x=\"{:.1}\" y=\"{:.0}\">{n}</text></g>",
            label_w - 6.0,
            y + row_h * 0.68,
            y + 3.0,
            row_h - 6.0,
            label_w + w + 6.0,
            y + row_h * 0.68,
            c = e(class),
        );
    }
    o.push_str("</svg>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use crate::fleet::tests::sample;
    use crate::Format;

    #[test]
    fn self_contained_sortable_with_chart() {
        let t = sample().render(Format::Html);
        assert!(t.contains("<table class=\"sortable\">"));
        assert!(t.contains("<script>"));
        assert!(!t.contains("src=") && !t.contains("href="));
        assert_eq!(t.matches("<tr data-class=").count(), 5);
        assert!(t.contains("<g data-class=\"unsupported\"><title>unsupported: 2</title>"));
        assert!(t.contains("Dell &lt;Inc.&gt;"));
        assert!(t.contains("two machines?"));
    }
}
