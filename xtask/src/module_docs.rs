//! `cargo xtask module-docs`: the input and output tables of each module's README, rendered
//! from its `variables.tf` and `outputs.tf` (in declaration order) between the
//! [`BEGIN`] and [`END`] markers, leaving the hand-written part of the README as it is.

use std::path::Path;

use anyhow::{Context, Result, bail};
use hcl::{Body, Expression, ObjectKey};

/// The line after which the generated tables start.
pub const BEGIN: &str = "<!-- BEGIN_TF_DOCS -->";
/// The line before which the generated tables end.
pub const END: &str = "<!-- END_TF_DOCS -->";

/// Rewrites the tables of every `modules/<name>/README.md` (or, with `check`, fails naming the
/// stale ones).
pub fn run(root: &Path, check: bool) -> Result<()> {
    let modules = root.join("modules");
    let mut dirs: Vec<_> = std::fs::read_dir(&modules)
        .with_context(|| format!("reading {}", modules.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("variables.tf").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!("no module (a directory with variables.tf) under {}", modules.display());
    }
    let mut stale = Vec::new();
    for dir in dirs {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        let outputs = if dir.join("outputs.tf").is_file() { read("outputs.tf")? } else { String::new() };
        let tables = render(&read("variables.tf")?, &outputs).with_context(|| format!("in {}", dir.display()))?;
        let readme_path = dir.join("README.md");
        let readme = read("README.md")?;
        let updated = splice(&readme, &tables).with_context(|| format!("in {}", readme_path.display()))?;
        if updated == readme {
            continue;
        }
        let shown = readme_path.strip_prefix(root).unwrap_or(&readme_path).display().to_string();
        if check {
            stale.push(shown);
        } else {
            std::fs::write(&readme_path, updated)?;
            println!("wrote {shown}");
        }
    }
    if !stale.is_empty() {
        bail!("stale module READMEs, run `cargo xtask module-docs`: {}", stale.join(", "));
    }
    Ok(())
}

/// The `## Inputs` and `## Outputs` tables of a module's `variables.tf` and `outputs.tf`.
pub fn render(variables_tf: &str, outputs_tf: &str) -> Result<String> {
    let mut out = String::from(
        "## Inputs\n\n| Name | Description | Type | Default | Required |\n|------|-------------|------|---------|:--------:|\n",
    );
    for (name, body) in blocks(variables_tf, "variable")? {
        let default = attribute(&body, "default");
        out.push_str(&format!(
            "| `{name}` | {} | {} | {} | {} |\n",
            description(&body),
            attribute(&body, "type").map_or_else(|| "`any`".to_string(), |t| code(&compact(t))),
            default.map_or_else(|| "n/a".to_string(), |d| code(&compact(d))),
            if default.is_some() { "no" } else { "yes" },
        ));
    }
    out.push_str("\n## Outputs\n\n| Name | Description |\n|------|-------------|\n");
    for (name, body) in blocks(outputs_tf, "output")? {
        out.push_str(&format!("| `{name}` | {} |\n", description(&body)));
    }
    Ok(out)
}

/// `readme` with `tables` between its markers.
pub fn splice(readme: &str, tables: &str) -> Result<String> {
    let (Some(begin), Some(end)) = (readme.find(BEGIN), readme.find(END)) else {
        bail!("no {BEGIN} ... {END} markers: add them where the tables go");
    };
    if end < begin {
        bail!("{END} comes before {BEGIN}");
    }
    Ok(format!("{}{BEGIN}\n{tables}{}", &readme[..begin], &readme[end..]))
}

/// The label and body of each `kind` block, in file order.
fn blocks(hcl_text: &str, kind: &str) -> Result<Vec<(String, Body)>> {
    let body = hcl::parse(hcl_text).context("parsing HCL")?;
    body.into_blocks()
        .filter(|b| b.identifier() == kind)
        .map(|b| {
            let label = b.labels().first().with_context(|| format!("a {kind} block without a name"))?;
            Ok((label.as_str().to_string(), b.body))
        })
        .collect()
}

fn attribute<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// The description, on one line, safe in a table cell; `n/a` when missing.
fn description(body: &Body) -> String {
    match attribute(body, "description") {
        Some(Expression::String(s)) => cell(s),
        Some(other) => cell(&compact(other)),
        None => "n/a".to_string(),
    }
}

/// Markdown inline code, safe in a table cell.
fn code(s: &str) -> String {
    format!("`{}`", cell(s))
}

fn cell(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

/// An expression (a type constraint or a default) as one line of HCL.
fn compact(e: &Expression) -> String {
    let list = |items: &mut dyn Iterator<Item = String>| items.collect::<Vec<_>>().join(", ");
    match e {
        Expression::Null => "null".to_string(),
        Expression::Bool(b) => b.to_string(),
        Expression::Number(n) => n.to_string(),
        Expression::String(s) => serde_json::to_string(s).unwrap_or_else(|_| s.clone()),
        Expression::Variable(v) => v.as_str().to_string(),
        Expression::Array(items) => format!("[{}]", list(&mut items.iter().map(compact))),
        Expression::Object(o) if o.is_empty() => "{}".to_string(),
        Expression::Object(o) => {
            let key = |k: &ObjectKey| match k {
                ObjectKey::Identifier(i) => i.as_str().to_string(),
                ObjectKey::Expression(e) => compact(e),
                other => other.to_string(),
            };
            format!("{{ {} }}", list(&mut o.iter().map(|(k, v)| format!("{} = {}", key(k), compact(v)))))
        }
        Expression::FuncCall(f) => format!("{}({})", f.name, list(&mut f.args.iter().map(compact))),
        other => hcl::format::to_string(other).map_or_else(|_| "…".to_string(), |s| cell(&s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARIABLES: &str = r#"
variable "name" {
  description = "Name: letters | digits,
    on two lines."
  type        = string
}

variable "cors" {
  description = "CORS."
  type = object({
    allow_origins = optional(list(string))
    max_age       = optional(number, 60)
  })
  default = null
}

variable "tags" {
  type    = map(string)
  default = { team = "data", "cost-center" = "42" }
}

variable "untyped" {
  description = "No type."
  default     = ["a", 1, true]
}
"#;

    const OUTPUTS: &str = r#"
output "url" {
  description = "The URL."
  value       = adf_function.this.function_url.url
}

output "bare" {
  value = 1
}
"#;

    #[test]
    fn tables_list_inputs_and_outputs_in_file_order() {
        let tables = render(VARIABLES, OUTPUTS).expect("renders");
        let expected = "## Inputs

| Name | Description | Type | Default | Required |
|------|-------------|------|---------|:--------:|
| `name` | Name: letters \\| digits, on two lines. | `string` | n/a | yes |
| `cors` | CORS. | `object({ allow_origins = optional(list(string)), max_age = optional(number, 60) })` | `null` | no |
| `tags` | n/a | `map(string)` | `{ team = \"data\", \"cost-center\" = \"42\" }` | no |
| `untyped` | No type. | `any` | `[\"a\", 1, true]` | no |

## Outputs

| Name | Description |
|------|-------------|
| `url` | The URL. |
| `bare` | n/a |
";
        assert_eq!(tables, expected);
    }

    #[test]
    fn splice_keeps_the_hand_written_parts_and_is_idempotent() {
        let readme = format!("# m\n\nIntro.\n\n{BEGIN}\nold tables\n{END}\n\n## Notes\n");
        let once = splice(&readme, "new\n").expect("splices");
        assert_eq!(once, format!("# m\n\nIntro.\n\n{BEGIN}\nnew\n{END}\n\n## Notes\n"));
        assert_eq!(splice(&once, "new\n").expect("splices"), once);
    }

    #[test]
    fn a_readme_without_markers_or_bad_hcl_is_an_error() {
        assert!(splice("# m\n", "t").is_err());
        assert!(splice(&format!("{END}\n{BEGIN}\n"), "t").is_err());
        assert!(render("variable \"x\" {", "").is_err());
        assert!(render("variable {\n}\n", "").is_err());
    }
}
