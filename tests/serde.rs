//! The `serde` feature: node ids as hex strings, nodes as enode URLs, and bad strings refused.

use peerlog::{Node, NodeId};

#[test]
fn node_ids_and_nodes_serialize_as_their_text_and_parse_back() {
    let id: NodeId = "ab".repeat(64).parse().unwrap();
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, format!("\"{}\"", "ab".repeat(64)));
    assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), id);

    let url = format!(
        "enode://{}@[2001:db8::1]:30303?discport=30301",
        "ab".repeat(64)
    );
    let node: Node = url.parse().unwrap();
    let json = serde_json::to_string(&node).unwrap();
    assert_eq!(json, format!("\"{url}\""));
    assert_eq!(serde_json::from_str::<Node>(&json).unwrap(), node);
}

#[test]
fn bad_strings_are_refused_with_the_parse_error() {
    let err = serde_json::from_str::<NodeId>("\"abc\"").unwrap_err();
    assert!(err.to_string().contains("128"), "{err}");
    assert!(serde_json::from_str::<Node>("\"enode://zz@1.2.3.4:1\"").is_err());
    assert!(serde_json::from_str::<NodeId>("42").is_err());
}
