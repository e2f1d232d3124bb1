//! The store's named operations on face embeddings by network (re-extraction, a group's move to another
//! network), backend-neutral.
