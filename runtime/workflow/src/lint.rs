//! The blueprint linter: every problem names the node it is about.

use crate::blueprint::Blueprint;

/// One problem in a blueprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The node it is about, if any.
    pub node: Option<String>,
    /// What is wrong, and what to do.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(n) => write!(f, "node {n:?}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The problems of `bp`, given the node types that exist.
pub fn lint(bp: &Blueprint, known_types: &[&str]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (id, n) in &bp.nodes {
        if !known_types.contains(&n.uses.as_str()) {
            problems.push(Problem { node: Some(id.clone()), message: format!("unknown node type {:?}", n.uses) });
        }
    }
    problems
}
