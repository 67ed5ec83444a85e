//! Built-in node types.

use async_trait::async_trait;

use crate::node::{Node, NodeContext, NodeError, NodeResult, Registry};

/// Registers every built-in node type in `r`.
pub fn register(r: &mut Registry) {
    r.register("pass", Pass);
}

/// `pass`: its output is its input.
struct Pass;

#[async_trait]
impl Node for Pass {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        Ok(NodeResult::output(cx.input))
    }
}
