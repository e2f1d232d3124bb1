//! The preset policies of face recognition (doc 867/35076): QcloudFRFullAccess grants every IAI action,
//! QcloudFRReadOnlyAccess every action that changes no stored state. They are built in (never stored),
//! cannot be changed or deleted, and are attached like any policy.

use std::sync::LazyLock;

use crate::api::access;

pub struct Preset {
    pub policy_id: u64,
    pub name: &'static str,
    pub description: &'static str,
    pub document: String,
}

pub const FULL_ACCESS_ID: u64 = 1;
pub const READ_ONLY_ID: u64 = 2;

pub static PRESETS: LazyLock<[Preset; 2]> = LazyLock::new(|| {
    let read_only: Vec<String> = crate::api::ACTIONS
        .iter()
        .filter(|a| access::of(a.name).is_some_and(|x| !x.writes))
        .map(|a| format!("iai:{}", a.name))
        .collect();
    [
        Preset {
            policy_id: FULL_ACCESS_ID,
            name: "QcloudFRFullAccess",
            description: "人脸识别（FR）全读写访问权限",
            document: serde_json::json!({
                "version": "2.0",
                "statement": [{"effect": "allow", "action": ["iai:*"], "resource": "*"}]
            })
            .to_string(),
        },
        Preset {
            policy_id: READ_ONLY_ID,
            name: "QcloudFRReadOnlyAccess",
            description: "人脸识别（FR）只读访问权限",
            document: serde_json::json!({
                "version": "2.0",
                "statement": [{"effect": "allow", "action": read_only, "resource": "*"}]
            })
            .to_string(),
        },
    ]
});

pub fn by_id(policy_id: u64) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.policy_id == policy_id)
}

pub fn by_name(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}
