//! Query cost as Shopify computes it (reference §3.1): scalars and enums 0, objects 1,
//! a connection 2 plus its page size times the cost of one item, each mutation field 10.
//! The requested cost uses `first`/`last`; the actual cost uses what the response holds.

use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType,
    Selection, SelectionSet, Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::{Name, Positioned, Value as ConstValue};
use serde_json::Value;
use std::collections::HashMap;

pub const MUTATION_COST: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Leaf,
    Composite,
}

/// Field return types, read once from the schema's SDL.
#[derive(Debug, Default, Clone)]
pub struct TypeMap {
    kinds: HashMap<String, Kind>,
    fields: HashMap<(String, String), String>,
}

fn base_name(t: &Type) -> &str {
    match &t.base {
        BaseType::Named(n) => n.as_str(),
        BaseType::List(inner) => base_name(inner),
    }
}

impl TypeMap {
    pub fn from_sdl(sdl: &str) -> Self {
        let mut map = TypeMap::default();
        for scalar in ["String", "Int", "Float", "Boolean", "ID"] {
            map.kinds.insert(scalar.into(), Kind::Leaf);
        }
        let Ok(doc) = async_graphql::parser::parse_schema(sdl) else {
            return map;
        };
        for def in doc.definitions {
            let TypeSystemDefinition::Type(t) = def else {
                continue;
            };
            let t = t.node;
            let name = t.name.node.to_string();
            match t.kind {
                TypeKind::Scalar | TypeKind::Enum(_) => {
                    map.kinds.insert(name, Kind::Leaf);
                }
                TypeKind::Object(o) => {
                    map.kinds.insert(name.clone(), Kind::Composite);
                    for f in o.fields {
                        map.fields.insert(
                            (name.clone(), f.node.name.node.to_string()),
                            base_name(&f.node.ty.node).to_string(),
                        );
                    }
                }
                TypeKind::Interface(i) => {
                    map.kinds.insert(name.clone(), Kind::Composite);
                    for f in i.fields {
                        map.fields.insert(
                            (name.clone(), f.node.name.node.to_string()),
                            base_name(&f.node.ty.node).to_string(),
                        );
                    }
                }
                TypeKind::Union(_) | TypeKind::InputObject(_) => {
                    map.kinds.insert(name, Kind::Composite);
                }
            }
        }
        map
    }

    fn field_type(&self, parent: &str, field: &str) -> Option<&str> {
        self.fields
            .get(&(parent.to_string(), field.to_string()))
            .map(String::as_str)
    }
}

pub struct CostInput<'a> {
    pub doc: &'a ExecutableDocument,
    pub operation_name: Option<&'a str>,
    pub variables: &'a Value,
}

pub fn operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(m), Some(n)) => m.get(&Name::new(n)),
        (DocumentOperations::Multiple(m), None) if m.len() == 1 => m.values().next(),
        _ => None,
    }
}

/// Names of the root fields of the selected operation, and whether it is a mutation.
pub fn roots(input: &CostInput) -> Option<(OperationType, Vec<String>)> {
    let op = operation(input.doc, input.operation_name)?;
    let mut names = Vec::new();
    collect_root_names(input, &op.node.selection_set.node, &mut names, 0);
    Some((op.node.ty, names))
}

fn collect_root_names(input: &CostInput, set: &SelectionSet, out: &mut Vec<String>, depth: usize) {
    if depth > 16 {
        return;
    }
    for sel in &set.items {
        match &sel.node {
            Selection::Field(f) => out.push(f.node.name.node.to_string()),
            Selection::InlineFragment(fr) => {
                collect_root_names(input, &fr.node.selection_set.node, out, depth + 1)
            }
            Selection::FragmentSpread(sp) => {
                if let Some(fr) = input.doc.fragments.get(&sp.node.fragment_name.node) {
                    collect_root_names(input, &fr.node.selection_set.node, out, depth + 1)
                }
            }
        }
    }
}

fn arg_int(input: &CostInput, f: &Field, name: &str) -> Option<u64> {
    let v = f.get_argument(name)?;
    let resolved = v
        .node
        .clone()
        .into_const_with(|var| {
            let json = input
                .variables
                .get(var.as_str())
                .cloned()
                .unwrap_or(Value::Null);
            ConstValue::from_json(json).map_err(|_| ())
        })
        .ok()?;
    match resolved {
        ConstValue::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Costs of a selection set on `parent`; `actual` walks the response alongside.
struct Walker<'a> {
    input: &'a CostInput<'a>,
    types: &'a TypeMap,
}

const MAX_DEPTH: usize = 32;

impl Walker<'_> {
    /// Every field selected on `parent`, fragments expanded.
    fn fields<'s>(
        &'s self,
        set: &'s SelectionSet,
        out: &mut Vec<&'s Positioned<Field>>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        for sel in &set.items {
            match &sel.node {
                Selection::Field(f) => out.push(f),
                Selection::InlineFragment(fr) => {
                    self.fields(&fr.node.selection_set.node, out, depth + 1)
                }
                Selection::FragmentSpread(sp) => {
                    if let Some(fr) = self.input.doc.fragments.get(&sp.node.fragment_name.node) {
                        self.fields(&fr.node.selection_set.node, out, depth + 1)
                    }
                }
            }
        }
    }

    /// Type that a field resolves to; for unions and interfaces, fields of fragments are looked up
    /// on every object type that declares them.
    fn type_of(&self, parent: &str, field: &str) -> Option<String> {
        self.types
            .field_type(parent, field)
            .map(str::to_string)
            .or_else(|| {
                self.types
                    .fields
                    .iter()
                    .find(|((_, f), _)| f == field)
                    .map(|(_, t)| t.clone())
            })
    }

    fn set_cost(
        &self,
        parent: &str,
        set: &SelectionSet,
        data: Option<&Value>,
        depth: usize,
    ) -> u64 {
        if depth > MAX_DEPTH {
            return 0;
        }
        let mut fields = Vec::new();
        self.fields(set, &mut fields, 0);
        fields
            .iter()
            .map(|f| {
                let key = f.node.response_key().node.as_str();
                let sub = data.map(|d| d.get(key).unwrap_or(&Value::Null));
                self.field_cost(parent, &f.node, sub, depth)
            })
            .sum()
    }

    fn field_cost(&self, parent: &str, f: &Field, data: Option<&Value>, depth: usize) -> u64 {
        let name = f.name.node.as_str();
        if name.starts_with("__") {
            return 0;
        }
        let Some(ty) = self.type_of(parent, name) else {
            return 0;
        };
        if self.types.kinds.get(&ty) != Some(&Kind::Composite) {
            return 0;
        }
        if matches!(data, Some(Value::Null)) {
            return 0;
        }
        let set = &f.selection_set.node;
        if ty.ends_with("Connection") {
            return self.connection_cost(&ty, f, set, data, depth);
        }
        match data {
            // A list of objects: each returned element counts.
            Some(Value::Array(items)) => items
                .iter()
                .map(|it| 1 + self.set_cost(&ty, set, Some(it), depth + 1))
                .sum(),
            _ => 1 + self.set_cost(&ty, set, data, depth + 1),
        }
    }

    fn connection_cost(
        &self,
        conn_ty: &str,
        f: &Field,
        set: &SelectionSet,
        data: Option<&Value>,
        depth: usize,
    ) -> u64 {
        let mut fields = Vec::new();
        self.fields(set, &mut fields, 0);
        let node_ty = self
            .types
            .field_type(conn_ty, "nodes")
            .map(str::to_string)
            .unwrap_or_default();
        let edge_ty = self
            .types
            .field_type(conn_ty, "edges")
            .unwrap_or_default()
            .to_string();
        match data {
            None => {
                let n = arg_int(self.input, f, "first")
                    .or_else(|| arg_int(self.input, f, "last"))
                    .unwrap_or(0);
                let per_item: u64 = fields
                    .iter()
                    .map(|sub| match sub.node.name.node.as_str() {
                        "edges" => {
                            self.set_cost(&edge_ty, &sub.node.selection_set.node, None, depth + 1)
                        }
                        "nodes" => {
                            1 + self.set_cost(
                                &node_ty,
                                &sub.node.selection_set.node,
                                None,
                                depth + 1,
                            )
                        }
                        _ => 0,
                    })
                    .sum();
                2 + n * per_item
            }
            Some(d) => {
                let mut total = 2;
                for sub in &fields {
                    let key = sub.node.response_key().node.as_str();
                    let Some(Value::Array(items)) = d.get(key) else {
                        continue;
                    };
                    for item in items {
                        total += match sub.node.name.node.as_str() {
                            "edges" => self.set_cost(
                                &edge_ty,
                                &sub.node.selection_set.node,
                                Some(item),
                                depth + 1,
                            ),
                            "nodes" => {
                                1 + self.set_cost(
                                    &node_ty,
                                    &sub.node.selection_set.node,
                                    Some(item),
                                    depth + 1,
                                )
                            }
                            _ => 0,
                        };
                    }
                }
                total
            }
        }
    }
}

/// Requested cost (before execution), or the actual cost given the response `data`.
pub fn cost(input: &CostInput, types: &TypeMap, data: Option<&Value>) -> u64 {
    let Some(op) = operation(input.doc, input.operation_name) else {
        return 0;
    };
    let w = Walker { input, types };
    match op.node.ty {
        OperationType::Mutation => {
            let mut fields = Vec::new();
            w.fields(&op.node.selection_set.node, &mut fields, 0);
            fields.len() as u64 * MUTATION_COST
        }
        OperationType::Query => w.set_cost("QueryRoot", &op.node.selection_set.node, data, 0),
        OperationType::Subscription => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types() -> TypeMap {
        TypeMap::from_sdl(&crate::shopify::graphql::build_schema().sdl())
    }

    fn req(q: &str, vars: Value) -> u64 {
        let doc = async_graphql::parser::parse_query(q).unwrap();
        cost(
            &CostInput {
                doc: &doc,
                operation_name: None,
                variables: &vars,
            },
            &types(),
            None,
        )
    }

    #[test]
    fn requested_costs_follow_shopify_rules() {
        assert_eq!(req("{ shop { name } }", json!({})), 1);
        assert_eq!(
            req(
                "{ customers(first: 10) { edges { node { id email } } } }",
                json!({})
            ),
            12
        );
        assert_eq!(
            req(
                "query($n:Int){ customers(first: $n) { nodes { id amountSpent { amount } } pageInfo { hasNextPage } } }",
                json!({"n": 50})
            ),
            2 + 50 * 2
        );
        assert_eq!(
            req(
                "{ customers(first: 5) { edges { node { id orders(first: 10) { nodes { id } } } } } }",
                json!({})
            ),
            2 + 5 * (1 + 2 + 10)
        );
        assert_eq!(
            req(
                "mutation { a: tagsAdd(id: \"x\", tags: [\"t\"]) { node { id } } b: tagsRemove(id: \"x\", tags: [\"t\"]) { node { id } } }",
                json!({})
            ),
            20
        );
        assert_eq!(req("{ customersCount { count } }", json!({})), 1);
        assert_eq!(
            req(
                "fragment F on Customer { id amountSpent { amount } } { customers(first: 2) { nodes { ...F } } }",
                json!({})
            ),
            2 + 2 * 2
        );
    }

    #[test]
    fn actual_cost_counts_returned_items() {
        let q = "{ customers(first: 10) { edges { node { id } } } }";
        let doc = async_graphql::parser::parse_query(q).unwrap();
        let vars = json!({});
        let input = CostInput {
            doc: &doc,
            operation_name: None,
            variables: &vars,
        };
        let data = json!({"customers": {"edges": [{"node": {"id": "a"}}, {"node": {"id": "b"}}]}});
        assert_eq!(cost(&input, &types(), Some(&data)), 4);
    }
}
