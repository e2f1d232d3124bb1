//! What the service's access rules need to know about each IAI action: its interface group (QPS limits,
//! CONTROL.md §B), whether CAM authorises it per group (resource-level) or as a whole (interface-level,
//! CONTROL.md §C), and whether it changes stored state (the read-only preset policy).
//!
//! Sources: the API overviews (docs 867/45023 and 867/32770) for the groups; docs 598/98145 and 867/35076
//! for the resource-level actions. Where the documents stop (their list of resource-level actions is cut
//! off), the choice is ours and the README says so: every other action that names its groups in
//! `GroupId`/`GroupIds` is resource-level, except `CreateGroup`, which 598/98145 lists as interface-level,
//! and `ConsoleModifyPersonBaseInfo`, which renames the person in every group (as ModifyPersonBaseInfo
//! does) and so needs what that needs. CopyPerson is authorised on its targets here and, in the action,
//! on every group the person is already in.

/// The interface groups that QPS limits apply to, one limiter each per principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InterfaceGroup {
    /// 人脸检测与分析相关接口
    Detection,
    /// 五官定位相关接口
    Landmarks,
    /// 人脸比对相关接口
    Comparison,
    /// 人脸验证相关接口
    Verification,
    /// 人员库管理相关接口
    GroupManagement,
    /// 人脸搜索相关接口
    Search,
    /// 人脸静态活体检测相关接口
    Liveness,
    /// 人脸静态活体检测(高精度版)相关接口
    LivenessAccurate,
    /// 人员查重相关接口 (legacy)
    SimilarPerson,
}

impl InterfaceGroup {
    pub const ALL: [InterfaceGroup; 9] = [
        Self::Detection,
        Self::Landmarks,
        Self::Comparison,
        Self::Verification,
        Self::GroupManagement,
        Self::Search,
        Self::Liveness,
        Self::LivenessAccurate,
        Self::SimilarPerson,
    ];

    /// The key of the group in the configuration file (`[qps]`) and in metrics.
    pub fn key(self) -> &'static str {
        match self {
            Self::Detection => "detection",
            Self::Landmarks => "landmarks",
            Self::Comparison => "comparison",
            Self::Verification => "verification",
            Self::GroupManagement => "group_management",
            Self::Search => "search",
            Self::Liveness => "liveness",
            Self::LivenessAccurate => "liveness_accurate",
            Self::SimilarPerson => "similar_person",
        }
    }

    /// Tencent's name of the group.
    pub fn tencent_name(self) -> &'static str {
        match self {
            Self::Detection => "人脸检测与分析相关接口",
            Self::Landmarks => "五官定位相关接口",
            Self::Comparison => "人脸比对相关接口",
            Self::Verification => "人脸验证相关接口",
            Self::GroupManagement => "人员库管理相关接口",
            Self::Search => "人脸搜索相关接口",
            Self::Liveness => "人脸静态活体检测相关接口",
            Self::LivenessAccurate => "人脸静态活体检测(高精度版)相关接口",
            Self::SimilarPerson => "人员查重相关接口",
        }
    }
}

/// How CAM decides an action: as a whole, or for the groups the request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Interface-level: only statements whose resource is `*` apply.
    Interface,
    /// Resource-level, one group in this string field.
    Group(&'static str),
    /// Resource-level, every group in this array field.
    Groups(&'static str),
    /// Resource-level listing (GetGroupList): answers only the groups the principal may see.
    ListedGroups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub group: InterfaceGroup,
    pub scope: Scope,
    /// Changes stored state (not granted by the read-only preset policy).
    pub writes: bool,
}

/// The access facts of an IAI action, `None` for a name that is not an action.
pub fn of(action: &str) -> Option<Access> {
    use InterfaceGroup::*;
    use Scope::*;
    let (group, scope, writes) = match action {
        "DetectFace" | "DetectFaceAttributes" => (Detection, Interface, false),
        "AnalyzeFace" | "AnalyzeDenseLandmarks" => (Landmarks, Interface, false),
        "CompareFace" | "CompareMaskFace" | "DetectFaceSimilarity" => {
            (Comparison, Interface, false)
        }
        "VerifyFace" | "VerifyPerson" => (Verification, Interface, false),
        "SearchFaces"
        | "SearchFacesReturnsByGroup"
        | "SearchPersons"
        | "SearchPersonsReturnsByGroup" => (Search, Groups("GroupIds"), false),
        "DetectLiveFace" => (Liveness, Interface, false),
        "DetectLiveFaceAccurate" => (LivenessAccurate, Interface, false),
        "CheckSimilarPerson" => (SimilarPerson, Groups("GroupIds"), true),
        "EstimateCheckSimilarPersonCostTime" => (SimilarPerson, Groups("GroupIds"), false),
        "GetCheckSimilarPersonJobIdList" | "GetSimilarPersonResult" => {
            (SimilarPerson, Interface, false)
        }
        "CreateGroup"
        | "CreateFace"
        | "DeleteFace"
        | "DeletePerson"
        | "ModifyPersonBaseInfo"
        | "RevertGroupFaceModelVersion" => (GroupManagement, Interface, true),
        "GetPersonBaseInfo"
        | "GetPersonGroupInfo"
        | "GetUpgradeGroupFaceModelVersionJobList"
        | "GetUpgradeGroupFaceModelVersionResult" => (GroupManagement, Interface, false),
        "CreatePerson"
        | "DeleteGroup"
        | "DeletePersonFromGroup"
        | "ModifyGroup"
        | "ModifyPersonGroupInfo"
        | "UpgradeGroupFaceModelVersion" => (GroupManagement, Group("GroupId"), true),
        "CopyPerson" => (GroupManagement, Groups("GroupIds"), true),
        "GetGroupInfo" | "GetPersonList" | "GetPersonListNum" => {
            (GroupManagement, Group("GroupId"), false)
        }
        "GetGroupList" => (GroupManagement, ListedGroups, false),
        // The web console's actions: resource-level like the actions they show, so that a policy limited to
        // some groups limits the console to them too.
        "ConsoleGetGroupList" => (GroupManagement, ListedGroups, false),
        "ConsoleGetPersonList" | "ConsoleCalibrateGroup" => {
            (GroupManagement, Group("GroupId"), false)
        }
        // It renames the person in every group it is in, as ModifyPersonBaseInfo does: interface-level like it.
        "ConsoleModifyPersonBaseInfo" => (GroupManagement, Interface, true),
        "ConsoleSearchFaces" | "ConsoleSearchPersons" => (Search, Groups("GroupIds"), false),
        "DescribeStatInfo" | "DescribeSearchLog" | "GetFaceThumbnail" => {
            (GroupManagement, Interface, false)
        }
        _ => return None,
    };
    Some(Access {
        group,
        scope,
        writes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ACTIONS;
    use crate::api::schema::Kind;

    #[test]
    fn every_action_has_access_facts_and_its_group_fields_exist() {
        for spec in ACTIONS {
            let access =
                of(spec.name).unwrap_or_else(|| panic!("{} has no access facts", spec.name));
            let field = |name: &str| spec.request.iter().find(|f| f.name == name);
            match access.scope {
                // Authorisation reads the group from `GroupId` and refuses a call without one.
                Scope::Group(name) => assert!(
                    name == "GroupId"
                        && matches!(
                            field(name).map(|f| (&f.kind, f.required)),
                            Some((Kind::String, true))
                        ),
                    "{}: {name} is not a required string field GroupId",
                    spec.name
                ),
                Scope::Groups(name) => assert!(
                    name == "GroupIds"
                        && matches!(
                            field(name).map(|f| &f.kind),
                            Some(Kind::Array(Kind::String))
                        ),
                    "{}: {name} is not an array of strings",
                    spec.name
                ),
                Scope::Interface | Scope::ListedGroups => {}
            }
        }
        assert_eq!(of("NoSuchAction"), None);
    }

    #[test]
    fn every_interface_group_has_actions() {
        for group in InterfaceGroup::ALL {
            assert!(
                ACTIONS
                    .iter()
                    .any(|a| of(a.name).map(|x| x.group) == Some(group)),
                "{group:?}"
            );
        }
    }
}
