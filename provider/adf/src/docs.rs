//! Registry documentation generated from the schemas: `docs/index.md` and
//! `docs/resources/<name>.md`, with examples from `examples/terraform`.
//!
//! `cargo xtask docs` writes them; a unit test fails when they are out of date.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tfplug::{Attribute, Block, Mode, Nesting, Provider, Schema};

use crate::AdfProvider;

/// Every generated file: a path relative to the repository root, and its content.
pub fn render_all(root: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let provider = AdfProvider;
    let example = |rel: &str| std::fs::read_to_string(root.join(rel));
    let mut files = vec![(
        PathBuf::from("docs/index.md"),
        render_page(
            "Provider: adf",
            "ActiveDataFlow: serverless data flows on AWS (workflow queues and tables, streams, Lambda delivery).",
            &provider.schema(),
            &[("Example Usage", example("examples/terraform/provider/provider.tf")?, "terraform")],
            "Argument Reference",
        ),
    )];
    for d in provider.data_sources() {
        let name = d.type_name();
        let short = name.trim_start_matches("adf_");
        let schema = d.schema();
        files.push((
            PathBuf::from(format!("docs/data-sources/{short}.md")),
            render_page(
                &format!("Data Source: {name}"),
                &schema.block.description,
                &schema,
                &[(
                    "Example Usage",
                    example(&format!("examples/terraform/data-sources/{name}/data-source.tf"))?,
                    "terraform",
                )],
                "Schema",
            ),
        ));
    }
    for r in provider.resources() {
        let name = r.type_name();
        let short = name.trim_start_matches("adf_");
        let dir = format!("examples/terraform/resources/{name}");
        let schema = r.schema();
        files.push((
            PathBuf::from(format!("docs/resources/{short}.md")),
            render_page(
                &format!("Resource: {name}"),
                &schema.block.description,
                &schema,
                &[
                    ("Example Usage", example(&format!("{dir}/resource.tf"))?, "terraform"),
                    ("Import", example(&format!("{dir}/import.sh"))?, "shell"),
                ],
                "Schema",
            ),
        ));
    }
    Ok(files)
}

fn render_page(
    title: &str,
    description: &str,
    schema: &Schema,
    examples: &[(&str, String, &str)],
    heading: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "---\npage_title: \"{title}\"\ndescription: |-\n  {}\n---\n", first_line(description));
    let _ = writeln!(out, "# {title}\n\n{description}\n");
    for (h, body, lang) in examples {
        let _ = writeln!(out, "## {h}\n\n```{lang}\n{}\n```\n", body.trim_end());
    }
    let _ = writeln!(out, "## {heading}\n");
    render_block(&mut out, &schema.block, 3);
    out.trim_end().to_string() + "\n"
}

fn first_line(s: &str) -> &str {
    s.split(". ").next().unwrap_or(s).trim_end_matches('.')
}

fn render_block(out: &mut String, block: &Block, level: usize) {
    let h = "#".repeat(level);
    let groups = [
        ("Required", [Mode::Required, Mode::Required]),
        ("Optional", [Mode::Optional, Mode::OptionalComputed]),
        ("Read-Only", [Mode::Computed, Mode::Computed]),
    ];
    for (title, modes) in groups {
        let attrs: Vec<&Attribute> = block.attributes.iter().filter(|a| modes.contains(&a.mode)).collect();
        let blocks = if title == "Optional" { block.blocks.as_slice() } else { &[] };
        if attrs.is_empty() && blocks.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{h} {title}\n");
        for a in attrs {
            if a.nested.is_some() {
                let kind = if a.nested_map { "map of attributes" } else { "attributes" };
                let _ = writeln!(
                    out,
                    "- `{}` ({kind}) {} See [below for nested schema](#nested-schema-for-{}).",
                    a.name, a.description, a.name
                );
                continue;
            }
            let mut notes = vec![a.ty.friendly()];
            if a.sensitive {
                notes.push("sensitive".into());
            }
            if a.requires_replace {
                notes.push("forces replacement".into());
            }
            let _ = writeln!(out, "- `{}` ({}) {}", a.name, notes.join(", "), a.description);
        }
        for b in blocks {
            let kind = match b.nesting {
                Nesting::Single => "block",
                Nesting::List => "block list",
            };
            let _ = writeln!(
                out,
                "- `{}` ({kind}) {} See [below for nested schema](#nested-schema-for-{}).",
                b.name, b.block.description, b.name
            );
        }
        out.push('\n');
    }
    let nested_attributes = block.attributes.iter().filter_map(|a| {
        let inner = a.nested.as_ref()?;
        Some((
            a.name.as_str(),
            Block { description: a.description.clone(), attributes: inner.clone(), blocks: Vec::new() },
        ))
    });
    let nested_blocks = block.blocks.iter().map(|b| (b.name.as_str(), b.block.clone()));
    for (name, nested) in nested_attributes.chain(nested_blocks).collect::<Vec<_>>() {
        let _ = writeln!(out, "<a id=\"nested-schema-for-{name}\"></a>\n{h} Nested Schema for `{name}`\n");
        render_block(out, &nested, level + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn checked_in_docs_match_the_schema() {
        for (path, content) in render_all(&root()).expect("render") {
            let on_disk = std::fs::read_to_string(root().join(&path)).unwrap_or_default();
            assert!(on_disk == content, "{} is out of date: run `cargo xtask docs`", path.display());
        }
    }

    #[test]
    fn every_attribute_has_a_description() {
        fn check(block: &Block, at: &str) {
            for a in &block.attributes {
                assert!(!a.description.trim().is_empty(), "{at}.{} has no description", a.name);
                if let Some(inner) = &a.nested {
                    check(
                        &Block { description: a.description.clone(), attributes: inner.clone(), blocks: Vec::new() },
                        &format!("{at}.{}", a.name),
                    );
                }
            }
            for b in &block.blocks {
                assert!(!b.block.description.trim().is_empty(), "{at}.{} has no description", b.name);
                check(&b.block, &format!("{at}.{}", b.name));
            }
        }
        check(&AdfProvider.schema().block, "provider");
        for r in AdfProvider.resources() {
            check(&r.schema().block, r.type_name());
        }
        for d in AdfProvider.data_sources() {
            check(&d.schema().block, d.type_name());
        }
    }
}
