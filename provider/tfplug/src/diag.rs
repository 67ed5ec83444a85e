//! Diagnostics with attribute paths, as Terraform shows them.

use std::fmt;

use crate::proto::tfplugin6 as pb;

/// One step of an [`AttributePath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// An attribute or nested block of an object.
    Attr(String),
    /// A key of a map.
    Key(String),
    /// An index of a list.
    Index(i64),
}

/// A path to an attribute inside a configuration or state value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct AttributePath(Vec<Step>);

impl AttributePath {
    /// The empty path: the whole object.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path, then attribute `name`.
    pub fn attr(&self, name: &str) -> Self {
        self.with(Step::Attr(name.to_string()))
    }

    /// This path, then map key `key`.
    pub fn key(&self, key: &str) -> Self {
        self.with(Step::Key(key.to_string()))
    }

    /// This path, then list index `i`.
    pub fn index(&self, i: i64) -> Self {
        self.with(Step::Index(i))
    }

    fn with(&self, step: Step) -> Self {
        let mut steps = self.0.clone();
        steps.push(step);
        Self(steps)
    }

    /// The steps, root first.
    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    pub fn to_proto(&self) -> pb::AttributePath {
        use pb::attribute_path::step::Selector;
        pb::AttributePath {
            steps: self
                .0
                .iter()
                .map(|s| pb::attribute_path::Step {
                    selector: Some(match s {
                        Step::Attr(n) => Selector::AttributeName(n.clone()),
                        Step::Key(k) => Selector::ElementKeyString(k.clone()),
                        Step::Index(i) => Selector::ElementKeyInt(*i),
                    }),
                })
                .collect(),
        }
    }

    pub fn from_proto(p: &pb::AttributePath) -> Self {
        use pb::attribute_path::step::Selector;
        Self(
            p.steps
                .iter()
                .filter_map(|s| {
                    Some(match s.selector.as_ref()? {
                        Selector::AttributeName(n) => Step::Attr(n.clone()),
                        Selector::ElementKeyString(k) => Step::Key(k.clone()),
                        Selector::ElementKeyInt(i) => Step::Index(*i),
                    })
                })
                .collect(),
        )
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Attr(n) if i == 0 => write!(f, "{n}")?,
                Step::Attr(n) => write!(f, ".{n}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// How bad a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The operation failed.
    Error,
    /// The operation went on; the user should know.
    Warning,
}

/// A message for the user, optionally pointing at an attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One line.
    pub summary: String,
    /// What happened and what to do.
    pub detail: String,
    /// The attribute the message is about.
    pub attribute: Option<AttributePath>,
}

impl Diagnostic {
    /// An error.
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { severity: Severity::Error, summary: summary.into(), detail: detail.into(), attribute: None }
    }

    /// A warning.
    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, summary: summary.into(), detail: detail.into(), attribute: None }
    }

    /// The same diagnostic, pointing at `path`.
    pub fn at(mut self, path: AttributePath) -> Self {
        self.attribute = Some(path);
        self
    }

    pub(crate) fn to_proto(&self) -> pb::Diagnostic {
        pb::Diagnostic {
            severity: match self.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: self.summary.clone(),
            detail: self.detail.clone(),
            attribute: self.attribute.as_ref().map(AttributePath::to_proto),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.attribute {
            write!(f, "{p}: ")?;
        }
        write!(f, "{}", self.summary)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// A list of diagnostics. Operations that fail return one holding at least one error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Adds an error at `path`.
    pub fn error_at(&mut self, path: AttributePath, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Diagnostic::error(summary, detail).at(path));
    }

    /// These diagnostics with each path cut to what Terraform can point at in a configuration
    /// of `block` ([`crate::Block::shown_part`]); a cut path is named in the detail instead.
    pub fn shown_in(mut self, block: &crate::Block) -> Self {
        for d in &mut self.0 {
            if let Some(path) = &d.attribute {
                let shown = block.shown_part(path);
                if &shown != path {
                    d.detail = format!("{} (at {path})", d.detail);
                    d.attribute = Some(shown);
                }
            }
        }
        self
    }

    /// Adds all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// True when any is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Err(self)` when any is an error, else `Ok(())`.
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.has_errors() { Err(self) } else { Ok(()) }
    }

    /// Takes the `Ok` of `r`, or records its error and gives `None`.
    pub fn take<T>(&mut self, r: Result<T, Diagnostic>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(d) => {
                self.push(d);
                None
            }
        }
    }

    pub(crate) fn to_proto(&self) -> Vec<pb::Diagnostic> {
        self.0.iter().map(Diagnostic::to_proto).collect()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Self(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_terraform_and_survive_the_wire() {
        let p = AttributePath::root().attr("tags").key("env").attr("x").index(2);
        assert_eq!(p.to_string(), "tags[\"env\"].x[2]");
        assert_eq!(AttributePath::from_proto(&p.to_proto()), p);
    }

    #[test]
    fn errors_and_warnings_are_told_apart() {
        let mut d = Diagnostics::new();
        d.push(Diagnostic::warning("w", ""));
        assert!(!d.has_errors());
        d.error_at(AttributePath::root().attr("a"), "bad", "very");
        assert!(d.has_errors());
        assert_eq!(d.to_proto()[1].attribute.as_ref().map(|a| a.steps.len()), Some(1));
    }
}
