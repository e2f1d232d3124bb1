//! What a call names that authorisation needs (its groups, its person, a CAM call's target user), read
//! from the raw parameters before they are parsed: a refused call costs a scan of its body, not a parse of
//! its images, and a list longer than any action accepts is refused before a single entry is authorised.
//!
//! The quick read must never disagree with the full parse the action later gets. Wherever it cannot be
//! sure (a field of an unexpected type, a name given twice), it gives up (`None`) and the caller parses
//! the parameters in full and reads the same facts from the validated result (`Named::from_params`).

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;

/// The most `GroupIds` entries any action accepts (the searches; CopyPerson and the duplicate checks
/// accept fewer, refused by the action). Longer lists are refused before authorisation.
pub const MAX_GROUP_IDS: usize = 100;

/// The facts, typed. `group_ids` holds at most `MAX_GROUP_IDS + 1` entries; `too_many_groups` says the
/// list was longer than `MAX_GROUP_IDS`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Named {
    pub group_id: Option<String>,
    pub group_ids: Vec<String>,
    pub too_many_groups: bool,
    pub person_id: Option<String>,
    /// CAM: the user a call names by name (GetUser, DeleteUser).
    pub user_name: Option<String>,
    /// CAM: `TargetUin`, `AttachUin`, `DetachUin`.
    pub target_uin: Option<u64>,
    pub attach_uin: Option<u64>,
    pub detach_uin: Option<u64>,
}

impl Named {
    /// From a JSON body; `None` when the body cannot be read quickly and surely.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Some(Self::default());
        }
        let quick: QuickJson = serde_json::from_slice(body).ok()?;
        let (group_ids, too_many_groups) = quick.group_ids.map(|c| (c.0, c.1)).unwrap_or_default();
        Some(Self {
            group_id: quick.group_id.map(Cow::into_owned),
            group_ids,
            too_many_groups,
            person_id: quick.person_id.map(Cow::into_owned),
            user_name: quick.name.map(Cow::into_owned),
            target_uin: quick.target_uin,
            attach_uin: quick.attach_uin,
            detach_uin: quick.detach_uin,
        })
    }

    /// From flattened pairs (a form body, a query string, the v1 scheme); `None` when a name is given twice
    /// or a uin does not read as one.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    ) -> Option<Self> {
        let mut named = Self::default();
        fn once(slot: &mut Option<String>, value: &str) -> Option<()> {
            if slot.is_some() {
                return None;
            }
            *slot = Some(value.to_owned());
            Some(())
        }
        fn once_uin(slot: &mut Option<u64>, value: &str) -> Option<()> {
            if slot.is_some() {
                return None;
            }
            *slot = Some(value.trim().parse().ok()?);
            Some(())
        }
        for (key, value) in pairs {
            match key.as_ref() {
                "GroupId" => once(&mut named.group_id, &value)?,
                "PersonId" => once(&mut named.person_id, &value)?,
                "Name" => once(&mut named.user_name, &value)?,
                "TargetUin" => once_uin(&mut named.target_uin, &value)?,
                "AttachUin" => once_uin(&mut named.attach_uin, &value)?,
                "DetachUin" => once_uin(&mut named.detach_uin, &value)?,
                // Every spelling that could reach the list (`GroupIds.0`, `GroupIds.07`, a bare `GroupIds`)
                // is counted: the set authorised is never smaller than the set the action gets.
                k if k == "GroupIds" || k.starts_with("GroupIds.") => {
                    if named.group_ids.len() < MAX_GROUP_IDS {
                        named.group_ids.push(value.into_owned());
                    } else {
                        named.too_many_groups = true;
                    }
                }
                _ => {}
            }
        }
        Some(named)
    }

    /// From parameters already parsed and validated.
    pub fn from_params(params: &Value) -> Self {
        let text = |name: &str| params.get(name).and_then(Value::as_str).map(str::to_owned);
        let uin = |name: &str| params.get(name).and_then(Value::as_u64);
        let listed = params
            .get("GroupIds")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Self {
            group_id: text("GroupId"),
            group_ids: listed
                .iter()
                .take(MAX_GROUP_IDS)
                .map(|g| g.as_str().unwrap_or_default().to_owned())
                .collect(),
            too_many_groups: listed.len() > MAX_GROUP_IDS,
            person_id: text("PersonId"),
            user_name: text("Name"),
            target_uin: uin("TargetUin"),
            attach_uin: uin("AttachUin"),
            detach_uin: uin("DetachUin"),
        }
    }
}

/// The fields read from a JSON body; serde skips everything else without copying it. A field given twice
/// fails the quick read (serde refuses duplicates), so the full parse decides.
#[derive(Deserialize)]
struct QuickJson<'a> {
    #[serde(rename = "GroupId", borrow, default)]
    group_id: Option<Cow<'a, str>>,
    #[serde(rename = "GroupIds", default)]
    group_ids: Option<Capped>,
    #[serde(rename = "PersonId", borrow, default)]
    person_id: Option<Cow<'a, str>>,
    #[serde(rename = "Name", borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(rename = "TargetUin", default)]
    target_uin: Option<u64>,
    #[serde(rename = "AttachUin", default)]
    attach_uin: Option<u64>,
    #[serde(rename = "DetachUin", default)]
    detach_uin: Option<u64>,
}

/// A list of strings kept up to `MAX_GROUP_IDS` entries; the rest are skipped and only flagged.
struct Capped(Vec<String>, bool);

impl<'de> Deserialize<'de> for Capped {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Seq;
        impl<'de> Visitor<'de> for Seq {
            type Value = Capped;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Capped, A::Error> {
                let mut kept = Vec::new();
                let mut over = false;
                while kept.len() < MAX_GROUP_IDS {
                    match seq.next_element::<String>()? {
                        Some(item) => kept.push(item),
                        None => return Ok(Capped(kept, false)),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    over = true;
                }
                Ok(Capped(kept, over))
            }
        }
        deserializer.deserialize_seq(Seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Option<Named> {
        Named::from_pairs(form_urlencoded::parse(text.as_bytes()))
    }

    #[test]
    fn json_fields_are_read_and_the_rest_skipped() {
        let body =
            br#"{"Image":"aaaa","GroupIds":["a","b"],"PersonId":"p","Nested":{"GroupId":"x"}}"#;
        let named = Named::from_json(body).unwrap();
        assert_eq!(named.group_ids, ["a", "b"]);
        assert_eq!(named.person_id.as_deref(), Some("p"));
        assert_eq!(named.group_id, None);
        assert_eq!(Named::from_json(b"  ").unwrap(), Named::default());
    }

    #[test]
    fn doubtful_bodies_are_left_to_the_full_parse() {
        assert!(Named::from_json(br#"{"GroupId":"test1","GroupId":"prod"}"#).is_none());
        assert!(Named::from_json(br#"{"GroupId":5}"#).is_none());
        assert!(Named::from_json(br#"{"TargetUin":2.0e11}"#).is_none());
        assert!(pairs("GroupId=test1&GroupId=prod").is_none());
        assert!(pairs("TargetUin=abc").is_none());
        let full = Named::from_params(&serde_json::json!({"GroupId": "prod", "TargetUin": 7}));
        assert_eq!(full.group_id.as_deref(), Some("prod"));
        assert_eq!(full.target_uin, Some(7));
    }

    #[test]
    fn long_lists_are_cut_and_flagged() {
        let list: Vec<String> = (0..150_000).map(|i| format!("g{i}")).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "GroupIds": list })).unwrap();
        let named = Named::from_json(&body).unwrap();
        assert_eq!(named.group_ids.len(), MAX_GROUP_IDS);
        assert!(named.too_many_groups);
        let exact: Vec<String> = (0..MAX_GROUP_IDS).map(|i| format!("g{i}")).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "GroupIds": exact })).unwrap();
        assert!(!Named::from_json(&body).unwrap().too_many_groups);
        let form: String = (0..101).map(|i| format!("GroupIds.{i}=g&")).collect();
        assert!(pairs(&form).unwrap().too_many_groups);
        // Every spelling of an entry counts.
        let named = pairs("GroupIds.0=a&GroupIds.07=b&GroupIds=c").unwrap();
        assert_eq!(named.group_ids, ["a", "b", "c"]);
    }
}
