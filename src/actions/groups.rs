//! Group actions: CreateGroup, DeleteGroup, GetGroupList, GetGroupInfo, ModifyGroup, GetPersonListNum.

use std::collections::HashSet;
use std::sync::Arc;

use super::rules::{self, Page};
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode, GroupFilter};
use crate::face::ModelVersion;
use crate::face::embed::Recognition;
use crate::index::{Change, Indexes};
use crate::store::groups::{self as rows, GroupChange, GroupRow, NewGroup};
use crate::store::{Store, now_ms};

pub async fn create(
    store: &Store,
    indexes: &Arc<Indexes>,
    req: CreateGroupRequest,
) -> Result<CreateGroupResponse, ApiError> {
    rules::check_group_id(&req.group_id)?;
    rules::check_group_name(&req.group_name)?;
    let tag = req.tag.unwrap_or_default();
    rules::check_tag(&tag)?;
    let ex_descriptions = req.group_ex_descriptions.unwrap_or_default();
    check_ex_descriptions(
        &ex_descriptions,
        ErrorCode::InvalidParameterValueGroupExDescriptionsNameIdentical,
    )?;
    let version = rules::face_model_version(req.face_model_version.as_deref())?;
    let model = Recognition::current(ModelVersion::parse(&version).unwrap_or(ModelVersion::V3));
    let group = NewGroup {
        group_id: req.group_id,
        name: req.group_name,
        tag,
        ex_descriptions,
        face_model_version: version,
        serving_model: model.file.to_owned(),
    };
    let row = store.create_group(group, rules::MAX_GROUPS).await?;
    Ok(CreateGroupResponse {
        face_model_version: row.face_model_version,
    })
}

pub async fn delete(
    store: &Store,
    indexes: &Arc<Indexes>,
    req: DeleteGroupRequest,
) -> Result<DeleteGroupResponse, ApiError> {
    rules::check_group_id(&req.group_id)?;
    store.delete_group(req.group_id).await?;
    Ok(DeleteGroupResponse {})
}

/// The groups in creation order; under a group-scoped CAM policy only those the caller may see, counted
/// and paged among themselves.
pub async fn list(
    store: &Store,
    req: GetGroupListRequest,
    visible: Option<GroupFilter>,
) -> Result<GetGroupListResponse, ApiError> {
    store
        .read(move |conn| {
            let (total, groups) = match visible {
                None => {
                    let total = rows::count(conn)?;
                    let page = Page::new(req.offset, req.limit, 1000, total)?;
                    (total, rows::list(conn, page.offset, page.limit)?)
                }
                Some(visible) => {
                    let mut all = rows::list(conn, 0, i64::MAX as u64)?;
                    all.retain(|g| visible.allows(&g.group_id));
                    let total = all.len() as u64;
                    let page = Page::new(req.offset, req.limit, 1000, total)?;
                    let groups = all
                        .into_iter()
                        .skip(page.offset as usize)
                        .take(page.limit as usize)
                        .collect();
                    (total, groups)
                }
            };
            Ok(GetGroupListResponse {
                group_infos: groups.into_iter().map(group_info).collect(),
                group_num: Some(total),
            })
        })
        .await
}

pub async fn info(
    store: &Store,
    req: GetGroupInfoRequest,
) -> Result<GetGroupInfoResponse, ApiError> {
    rules::check_group_id(&req.group_id)?;
    let g = store
        .read(move |conn| Ok::<_, ApiError>(rows::get(conn, &req.group_id)?))
        .await?;
    Ok(GetGroupInfoResponse {
        group_name: g.name,
        group_id: g.group_id,
        group_ex_descriptions: g.ex_descriptions,
        tag: g.tag,
        face_model_version: g.face_model_version,
        creation_timestamp: g.created_ms as u64,
    })
}

pub async fn modify(
    store: &Store,
    req: ModifyGroupRequest,
) -> Result<ModifyGroupResponse, ApiError> {
    rules::check_group_id(&req.group_id)?;
    if let Some(name) = &req.group_name {
        rules::check_group_name(name)?;
    }
    if let Some(tag) = &req.tag {
        rules::check_tag(tag)?;
    }
    let renames = req.group_ex_description_infos.unwrap_or_default();
    for rename in &renames {
        rules::check_ex_description_name(&rename.group_ex_description)?;
    }
    store
        .write(move |tx| {
            let current = rows::get(tx, &req.group_id)?;
            let ex_descriptions = if renames.is_empty() {
                None
            } else {
                Some(apply_renames(&current, &renames)?)
            };
            let change = GroupChange {
                name: req.group_name,
                tag: req.tag,
                ex_descriptions,
            };
            rows::update(tx, &req.group_id, change, now_ms())?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(ModifyGroupResponse {})
}

pub async fn person_list_num(
    store: &Store,
    req: GetPersonListNumRequest,
) -> Result<GetPersonListNumResponse, ApiError> {
    rules::check_group_id(&req.group_id)?;
    let (persons, faces) = store
        .read(move |conn| Ok::<_, ApiError>(rows::counts(conn, &req.group_id)?))
        .await?;
    Ok(GetPersonListNumResponse {
        person_num: persons,
        face_num: faces,
    })
}

/// Rename custom fields by index; an index one past the end adds a field (up to five in all).
fn apply_renames(
    group: &GroupRow,
    renames: &[GroupExDescriptionInfo],
) -> Result<Vec<String>, ApiError> {
    let mut names = group.ex_descriptions.clone();
    for rename in renames {
        let index = rename.group_ex_description_index as usize;
        if index >= rules::MAX_GROUP_EX_DESCRIPTIONS {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValueGroupExDescriptionsExceed,
                format!(
                    "GroupExDescriptionIndex {index} is out of range: a group has at most 5 custom fields."
                ),
            ));
        }
        match index.cmp(&names.len()) {
            std::cmp::Ordering::Less => names[index] = rename.group_ex_description.clone(),
            std::cmp::Ordering::Equal => names.push(rename.group_ex_description.clone()),
            std::cmp::Ordering::Greater => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    format!(
                        "GroupExDescriptionIndex {index} is past the group's {} custom fields.",
                        names.len()
                    ),
                ));
            }
        }
    }
    check_ex_descriptions(&names, ErrorCode::FailedOperationDuplicatedGroupDescription)?;
    Ok(names)
}

/// At most five custom field names, each valid, none repeated (`duplicate` names the error for repeats).
fn check_ex_descriptions(names: &[String], duplicate: ErrorCode) -> Result<(), ApiError> {
    if names.len() > rules::MAX_GROUP_EX_DESCRIPTIONS {
        return Err(ApiError::code(
            ErrorCode::InvalidParameterValueGroupExDescriptionsExceed,
        ));
    }
    let mut seen = HashSet::new();
    for name in names {
        rules::check_ex_description_name(name)?;
        if !seen.insert(name.as_str()) {
            return Err(ApiError::new(
                duplicate,
                format!("The custom field name `{name}` is used twice."),
            ));
        }
    }
    Ok(())
}

fn group_info(g: GroupRow) -> GroupInfo {
    GroupInfo {
        group_name: g.name,
        group_id: g.group_id,
        group_ex_descriptions: Some(g.ex_descriptions),
        tag: Some(g.tag),
        face_model_version: Some(g.face_model_version),
        creation_timestamp: Some(g.created_ms as u64),
        update_timestamp: g.updated_ms as u64,
    }
}

/// What the store refused, as Tencent's codes.
impl From<crate::store::groups::Refusal> for ApiError {
    fn from(refusal: crate::store::groups::Refusal) -> Self {
        match refusal {}
    }
}
