//! Runtime view of each action's request fields, generated from the specification (`generated/schema.rs`).
//!
//! Two jobs: check a JSON body against the field types (TC3 POST), and rebuild typed JSON from the
//! flattened `Name.0.Field=value` pairs of form and query encodings (TC3 GET, HmacSHA1/HmacSHA256).

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use super::ApiError;

/// The wire type of a field.
#[derive(Debug)]
pub enum Kind {
    String,
    /// `int64` on the wire.
    Int,
    /// `uint64` on the wire.
    UInt,
    Float,
    Boolean,
    Array(&'static Kind),
    Struct(&'static [Field]),
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

/// Which API versions offer an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// In the current 2018-03-01 SDKs (and so in 2020-03-03).
    Current,
    /// Removed from the SDKs but still sent by older installs.
    Legacy,
    /// Only in version 2020-03-03.
    V20200303Only,
    /// The web console's actions (this server's own, in both versions).
    Console,
}

#[derive(Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub availability: Availability,
    pub request: &'static [Field],
}

pub const VERSION_2018: &str = "2018-03-01";
pub const VERSION_2020: &str = "2020-03-03";

impl ActionSpec {
    pub fn offered_in(&self, version: &str) -> bool {
        match self.availability {
            Availability::Current | Availability::Legacy | Availability::Console => {
                version == VERSION_2018 || version == VERSION_2020
            }
            Availability::V20200303Only => version == VERSION_2020,
        }
    }
}

/// Check a JSON request object against `fields`, in place: nulls count as absent, integral floats such as
/// `60.0` become integers where an integer is expected. A field the action does not have is refused
/// (`UnknownParameter`, as Tencent answers): ignoring it would let a call mean something it was not signed
/// for.
pub fn validate(params: &mut Value, fields: &[Field]) -> Result<(), ApiError> {
    validate_object(params, fields, "")
}

fn validate_object(value: &mut Value, fields: &[Field], path: &str) -> Result<(), ApiError> {
    let Value::Object(map) = value else {
        return Err(ApiError::invalid_type(if path.is_empty() {
            "Request"
        } else {
            path
        }));
    };
    map.retain(|_, v| !v.is_null());
    if let Some(unknown) = map
        .keys()
        .find(|k| !fields.iter().any(|f| f.name == k.as_str()))
    {
        return Err(unknown_parameter(&join(path, unknown)));
    }
    for field in fields {
        let name = join(path, field.name);
        match map.get_mut(field.name) {
            Some(v) => validate_value(v, &field.kind, &name)?,
            None if field.required => return Err(ApiError::missing_parameter(&name)),
            None => {}
        }
    }
    Ok(())
}

fn validate_value(value: &mut Value, kind: &Kind, name: &str) -> Result<(), ApiError> {
    let ok = match kind {
        Kind::String => value.is_string(),
        Kind::Boolean => value.is_boolean(),
        Kind::Float => value.is_number(),
        Kind::Int | Kind::UInt => match as_integer(value, matches!(kind, Kind::Int)) {
            Some(n) => {
                *value = Value::Number(n);
                true
            }
            None => false,
        },
        Kind::Array(item) => match value {
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    validate_value(v, item, &format!("{name}.{i}"))?;
                }
                true
            }
            _ => false,
        },
        Kind::Struct(fields) => return validate_object(value, fields, name),
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_type(name))
    }
}

/// A JSON number as an integer of the wanted signedness; `60.0` is accepted as `60`.
fn as_integer(value: &Value, signed: bool) -> Option<Number> {
    let Value::Number(n) = value else { return None };
    if signed {
        if let Some(i) = n.as_i64() {
            return Some(i.into());
        }
    } else if let Some(u) = n.as_u64() {
        return Some(u.into());
    }
    let f = n.as_f64()?;
    if f.fract() != 0.0 || !f.is_finite() {
        return None;
    }
    if signed && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        Some((f as i64).into())
    } else if !signed && f >= 0.0 && f < u64::MAX as f64 {
        Some((f as u64).into())
    } else {
        None
    }
}

/// `UnknownParameter` for a name that is not a field, shown cut short.
fn unknown_parameter(name: &str) -> ApiError {
    ApiError::new(
        super::ErrorCode::UnknownParameter,
        format!("The parameter `{}` is not recognized.", super::clip(name)),
    )
}

/// Rebuild the JSON request object from flattened form/query pairs (`Urls.0=a`, `Infos.0.Index=1`),
/// converting each text value to its field's type. A name that is not a field of the action is refused
/// (`UnknownParameter`), and so is a name nested deeper than any field of the action (`InvalidParameter`).
pub fn from_flat<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    fields: &[Field],
) -> Result<Value, ApiError> {
    let deepest = max_depth(fields);
    let mut root = BTreeMap::new();
    for (key, value) in pairs {
        // A key can name nothing deeper than the action's deepest field; refusing it first keeps the tree
        // built below (recursively) as shallow as the schema, whatever a caller sends.
        if key.bytes().filter(|&b| b == b'.').count() >= deepest {
            return Err(ApiError::new(
                super::ErrorCode::InvalidParameter,
                format!(
                    "The parameter `{}` is nested deeper than any parameter of this action.",
                    super::clip(key)
                ),
            ));
        }
        let segments: Vec<&str> = key.split('.').collect();
        insert(&mut root, &segments, value, key)?;
    }
    let mut out = object_value(root, fields, "")?;
    validate(&mut out, fields)?;
    Ok(out)
}

/// How many dot-separated segments the deepest field path has (`Infos.0.Index` is 3).
fn max_depth(fields: &[Field]) -> usize {
    fn kind_depth(kind: &Kind) -> usize {
        match kind {
            Kind::Array(item) => 1 + kind_depth(item),
            Kind::Struct(fields) => max_depth(fields),
            _ => 0,
        }
    }
    fields
        .iter()
        .map(|f| 1 + kind_depth(&f.kind))
        .max()
        .unwrap_or(1)
}

/// Flattened pairs collected into a tree before their types are known.
enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

fn insert(
    children: &mut BTreeMap<String, Node>,
    segments: &[&str],
    value: &str,
    key: &str,
) -> Result<(), ApiError> {
    let (first, rest) = segments
        .split_first()
        .expect("split yields at least one segment");
    if rest.is_empty() {
        children.insert((*first).to_owned(), Node::Leaf(value.to_owned()));
        return Ok(());
    }
    match children
        .entry((*first).to_owned())
        .or_insert_with(|| Node::Branch(BTreeMap::new()))
    {
        Node::Branch(grandchildren) => insert(grandchildren, rest, value, key),
        Node::Leaf(_) => Err(ApiError::invalid_type(key)),
    }
}

/// A branch read as a structure with `fields`; children that are not fields are dropped.
fn object_value(
    children: BTreeMap<String, Node>,
    fields: &[Field],
    name: &str,
) -> Result<Value, ApiError> {
    let mut map = Map::new();
    for (child, node) in children {
        let Some(field) = fields.iter().find(|f| f.name == child) else {
            return Err(unknown_parameter(&join(name, &child)));
        };
        let value = node_value(node, &field.kind, &join(name, &child))?;
        map.insert(child, value);
    }
    Ok(Value::Object(map))
}

fn node_value(node: Node, kind: &Kind, name: &str) -> Result<Value, ApiError> {
    match (node, kind) {
        (Node::Leaf(text), _) => coerce_text(text, kind, name),
        (Node::Branch(children), Kind::Struct(fields)) => object_value(children, fields, name),
        (Node::Branch(children), Kind::Array(item)) => {
            let mut indexed = Vec::with_capacity(children.len());
            for (index, node) in children {
                let i: usize = index
                    .parse()
                    .map_err(|_| ApiError::invalid_type(&join(name, &index)))?;
                indexed.push((i, node));
            }
            // The map orders "10" before "2"; the wire order is numeric.
            indexed.sort_by_key(|(i, _)| *i);
            let items = indexed
                .into_iter()
                .map(|(i, node)| node_value(node, item, &format!("{name}.{i}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Array(items))
        }
        (Node::Branch(_), _) => Err(ApiError::invalid_type(name)),
    }
}

fn coerce_text(text: String, kind: &Kind, name: &str) -> Result<Value, ApiError> {
    let bad = || ApiError::invalid_type(name);
    Ok(match kind {
        Kind::String => Value::String(text),
        Kind::Int => integer_text(&text, true).ok_or_else(bad)?,
        Kind::UInt => integer_text(&text, false).ok_or_else(bad)?,
        Kind::Float => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(bad)?,
        Kind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(bad()),
        },
        Kind::Array(_) | Kind::Struct(_) => return Err(bad()),
    })
}

/// `"7"`, or `"7.0"` as some clients write integral values.
fn integer_text(text: &str, signed: bool) -> Option<Value> {
    let text = text.trim();
    let exact = if signed {
        text.parse::<i64>().ok().map(Number::from)
    } else {
        text.parse::<u64>().ok().map(Number::from)
    };
    exact
        .or_else(|| {
            text.parse::<f64>()
                .ok()
                .and_then(|f| as_integer(&Value::from(f), signed))
        })
        .map(Value::Number)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::{ACTIONS, find_action};

    fn fields(action: &str) -> &'static [Field] {
        find_action(action).unwrap().request
    }

    #[test]
    fn every_action_is_found_by_exact_name() {
        assert!(
            ACTIONS.windows(2).all(|w| w[0].name < w[1].name),
            "ACTIONS must stay sorted"
        );
        assert!(find_action("CreateGroup").is_some());
        assert!(find_action("creategroup").is_none());
        assert!(
            !find_action("CompareMaskFace")
                .unwrap()
                .offered_in(VERSION_2018)
        );
        assert!(
            find_action("CompareMaskFace")
                .unwrap()
                .offered_in(VERSION_2020)
        );
        assert!(
            find_action("DetectLiveFace")
                .unwrap()
                .offered_in(VERSION_2018)
        );
    }

    #[test]
    fn unflattens_and_coerces_form_values() {
        let pairs = [
            ("GroupId", "g1"),
            ("PersonName", "张三"),
            ("PersonId", "p1"),
            ("Gender", "1"),
            ("PersonExDescriptionInfos.1.PersonExDescriptionIndex", "1"),
            ("PersonExDescriptionInfos.0.PersonExDescriptionIndex", "0"),
            ("PersonExDescriptionInfos.0.PersonExDescription", "v0"),
            ("PersonExDescriptionInfos.1.PersonExDescription", "v1"),
            ("QualityControl", "2"),
        ];
        let value = from_flat(pairs, fields("CreatePerson")).unwrap();
        let unknown = from_flat(
            [("GroupId", "g1"), ("Unknown.0", "x")],
            fields("CreatePerson"),
        );
        assert_eq!(
            unknown.unwrap_err().code,
            super::super::ErrorCode::UnknownParameter
        );
        let mut json = json!({"GroupId": "g1", "Bogus": 1});
        let err = validate(&mut json, fields("CreatePerson")).unwrap_err();
        assert_eq!(err.code, super::super::ErrorCode::UnknownParameter);
        assert!(err.message.contains("`Bogus`"));
        assert_eq!(
            value,
            json!({"GroupId": "g1", "PersonName": "张三", "PersonId": "p1", "Gender": 1, "QualityControl": 2,
                   "PersonExDescriptionInfos": [
                       {"PersonExDescriptionIndex": 0, "PersonExDescription": "v0"},
                       {"PersonExDescriptionIndex": 1, "PersonExDescription": "v1"}]})
        );
        let urls: Vec<(String, String)> = (0..12)
            .map(|i| (format!("Urls.{i}"), format!("u{i}")))
            .collect();
        let mut pairs: Vec<(&str, &str)> =
            urls.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.push(("PersonId", "p"));
        pairs.push(("FaceMatchThreshold", "60.0"));
        let value = from_flat(pairs, fields("CreateFace")).unwrap();
        assert_eq!(value["Urls"][10], "u10");
        assert_eq!(value["FaceMatchThreshold"], 60.0);
    }

    #[test]
    fn keys_deeper_than_the_schema_are_refused_without_recursion() {
        assert_eq!(max_depth(fields("CreatePerson")), 3);
        assert_eq!(max_depth(fields("GetGroupList")), 1);
        let ok = from_flat(
            [("PersonExDescriptionInfos.0.PersonExDescription", "v")],
            fields("CreatePerson"),
        );
        assert!(ok.is_err_and(|e| e.code == crate::api::ErrorCode::MissingParameter));
        // 50,000 dots used to build (and drop) a tree 50,000 levels deep and overflow the stack.
        let deep = vec!["a"; 50_000].join(".");
        let err = from_flat([(deep.as_str(), "1")], fields("GetGroupList")).unwrap_err();
        assert_eq!(err.code, crate::api::ErrorCode::InvalidParameter);
        assert!(err.message.contains("nested deeper"), "{}", err.message);
        assert!(err.message.len() < 200);
        let err = from_flat(
            [("PersonExDescriptionInfos.0.PersonExDescription.x", "v")],
            fields("CreatePerson"),
        )
        .unwrap_err();
        assert_eq!(err.code, crate::api::ErrorCode::InvalidParameter);
    }

    #[test]
    fn wrong_types_and_missing_fields_are_named() {
        let err = from_flat(
            [("Gender", "male"), ("GroupId", "g")],
            fields("CreatePerson"),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "The value type of parameter `Gender` is not valid."
        );
        let mut body = json!({"GroupName": "n"});
        let err = validate(&mut body, fields("CreateGroup")).unwrap_err();
        assert_eq!(err.code, crate::api::ErrorCode::MissingParameter);
        assert!(err.message.contains("`GroupId`"));
        let mut body = json!({"GroupId": 5, "GroupName": "n"});
        assert!(
            validate(&mut body, fields("CreateGroup"))
                .unwrap_err()
                .message
                .contains("`GroupId`")
        );
        let mut body = json!({"Offset": -1});
        assert!(validate(&mut body, fields("GetGroupList")).is_err());
        let mut body = json!({"Offset": 2.0, "Limit": null});
        validate(&mut body, fields("GetGroupList")).unwrap();
        assert_eq!(body, json!({"Offset": 2}));
        let mut body = json!({"GroupExDescriptions": ["a", 1], "GroupId": "g", "GroupName": "n"});
        assert!(
            validate(&mut body, fields("CreateGroup"))
                .unwrap_err()
                .message
                .contains("GroupExDescriptions.1")
        );
    }
}
