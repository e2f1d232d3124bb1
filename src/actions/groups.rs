//! Group actions: CreateGroup, DeleteGroup, GetGroupList, GetGroupInfo, ModifyGroup, GetPersonListNum.

use std::collections::HashSet;

use super::rules::{self, Page};
use crate::api::model::*;
use crate::api::{ApiError, ErrorCode, GroupFilter};
use crate::face::ModelVersion;
use crate::face::embed::Recognition;
use crate::store::Store;
use crate::store::groups::{GroupEdit, GroupRow, NewGroup};

pub async fn create(
    store: &Store,
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
    let limit = rules::check_limit(req.limit, 1000)?;
    let visible = visible.map(|v| move |id: &str| v.allows(id));
    let (total, groups) = store
        .list_groups(req.offset.unwrap_or(0), limit, visible)
        .await?;
    // The offset is checked against the total read with the page.
    Page::new(req.offset, Some(limit), 1000, total)?;
    Ok(GetGroupListResponse {
        group_infos: groups.into_iter().map(group_info).collect(),
        group_num: Some(total),
    })
}

pub async fn info(
    store: &Store,
    req: GetGroupInfoRequest,
) -> Result<GetGroupInfoResponse, ApiError> {
    rules::check_group_id(&req.group_id)?;
    let g = store.group(req.group_id).await?;
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
    let edit = GroupEdit {
        name: req.group_name,
        tag: req.tag,
        renames: renames
            .into_iter()
            .map(|r| {
                (
                    r.group_ex_description_index as usize,
                    r.group_ex_description,
                )
            })
            .collect(),
    };
    store
        .modify_group(req.group_id, edit, rules::MAX_GROUP_EX_DESCRIPTIONS)
        .await?;
    Ok(ModifyGroupResponse {})
}

pub async fn person_list_num(
    store: &Store,
    req: GetPersonListNumRequest,
) -> Result<GetPersonListNumResponse, ApiError> {
    rules::check_group_id(&req.group_id)?;
    let (persons, faces) = store.group_size(req.group_id).await?;
    Ok(GetPersonListNumResponse {
        person_num: persons,
        face_num: faces,
    })
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
