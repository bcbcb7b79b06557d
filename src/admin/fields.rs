//! [`KeyFields`]: which fields of a key the management API shows and accepts, and under
//! which names.

use serde_json::{Map, Value};

use super::body::{from_value, parse_json, CreateBody, UpdateBody, CREATE_FIELDS, UPDATE_FIELDS};
use super::error::AdminError;
use crate::identity::Identity;
use crate::manage::actor_label;
use crate::manage::{KeyUpdate, KeyView, ManageError, NewKey};

/// The name of the plaintext field, in keygate's names.
const PLAINTEXT: &str = "key";

/// Which fields of a key the management API shows and accepts, and under which names.
/// One mapping serves both directions: keys are rendered with it, and request bodies
/// are read back through it, so an API never shows a field under one name and accepts
/// it under another.
///
/// Fields are named by keygate's names: those of [`KeyView`] (`id`, `name`, `scopes`,
/// `ips`, `created_at`, …) and `key`, the plaintext shown once on creation and roll.
///
/// ```
/// use keygate::admin::KeyFields;
///
/// // An API's own names: `permissions` for scopes, `value` for the plaintext, a constant `type`,
/// // and who created and last changed each key.
/// let fields = KeyFields::default()
///     .only(["id", "name", "scopes", "ips", "created_at", "updated_at"])
///     .rename("scopes", "permissions")
///     .rename("key", "value")
///     .constant("type", "api")
///     .required(["type", "permissions"])
///     .record_actors("created_by", "updated_by");
/// # let _ = fields;
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct KeyFields {
    only: Option<Vec<String>>,
    renames: Vec<(String, String)>,
    constants: Vec<(String, Value)>,
    required: Vec<String>,
    actors: Option<(String, String)>,
}

impl KeyFields {
    /// Shows and accepts only these fields (keygate's names). The others are left out
    /// of every key and refused in bodies as unknown fields. The plaintext is always
    /// shown once. Default: every field.
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.only = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Shows and accepts the field keygate calls `field` as `name`; `field` itself is
    /// then unknown in bodies. `rename("key", "value")` names the plaintext `value`.
    pub fn rename(mut self, field: impl Into<String>, name: impl Into<String>) -> Self {
        self.renames.push((field.into(), name.into()));
        self
    }

    /// Also shows `name` with this constant value on every key. Bodies may carry it,
    /// with exactly this value (anything else is a 400); it changes nothing.
    pub fn constant(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.constants.push((name.into(), value.into()));
        self
    }

    /// Also requires these fields (the API's names) in the body of a creation. `name`
    /// is always required.
    pub fn required<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.required.extend(names.into_iter().map(Into::into));
        self
    }

    /// Records who created and who last changed each key: the acting key's id, or
    /// `external:<subject>` for a verified credential such as a JWT (never mistaken for
    /// a key id), kept in the key's metadata under `created_by` and `updated_by` and
    /// shown under those names (`null` when unknown, as for keys created by server-side
    /// code). They are left out of the `metadata` shown, so that the metadata a client
    /// reads is metadata it may send back.
    ///
    /// Both are the server's: `created_by` is set once, on creation, and never changes;
    /// the router sets `updated_by` on creation and on every change that leaves a
    /// record (update, disable, roll, revoke; a hard delete leaves none, and its audit
    /// event names the actor). A body that writes or erases either, as a field of its
    /// own or in `metadata` (`null` included), is refused with 400 `read_only_field`
    /// and changes nothing.
    pub fn record_actors(
        mut self,
        created_by: impl Into<String>,
        updated_by: impl Into<String>,
    ) -> Self {
        self.actors = Some((created_by.into(), updated_by.into()));
        self
    }

    /// The API's name of keygate's field `field`.
    pub fn api_name<'a>(&'a self, field: &'a str) -> &'a str {
        self.renames
            .iter()
            .find(|(from, _)| from == field)
            .map_or(field, |(_, to)| to.as_str())
    }

    /// keygate's name of the API's field `name`, if it is one the API accepts.
    fn field_of<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let field = match self.renames.iter().find(|(_, to)| to == name) {
            Some((from, _)) => from.as_str(),
            // Renamed away: only its new name is known.
            None if self.renames.iter().any(|(from, _)| from == name) => return None,
            None => name,
        };
        let shown = self
            .only
            .as_ref()
            .is_none_or(|only| only.iter().any(|f| f == field));
        shown.then_some(field)
    }

    /// `view` as the API shows it, with `plaintext` (the one-time secret of a creation
    /// or roll) under the plaintext's name.
    pub fn render(&self, view: &KeyView, plaintext: Option<&str>) -> Value {
        let mut out = Map::new();
        if let Ok(Value::Object(all)) = serde_json::to_value(view) {
            for (field, value) in all {
                let shown = self.only.as_ref().is_none_or(|only| only.contains(&field));
                if shown {
                    out.insert(self.api_name(&field).to_owned(), value);
                }
            }
        }
        for (name, value) in &self.constants {
            out.insert(name.clone(), value.clone());
        }
        if let Some((created, updated)) = &self.actors {
            // Shown as fields of their own, not in `metadata`, so that the metadata a
            // client reads is metadata it may send back.
            if let Some(Value::Object(metadata)) = out.get_mut(self.api_name("metadata")) {
                metadata.remove(created);
                metadata.remove(updated);
            }
            for name in [created, updated] {
                let by = view.metadata.get(name).cloned().unwrap_or(Value::Null);
                out.insert(name.clone(), by);
            }
        }
        if let Some(secret) = plaintext {
            out.insert(self.api_name(PLAINTEXT).to_owned(), secret.into());
        }
        Value::Object(out)
    }

    /// The body of a creation, read through this mapping: constants checked and dropped,
    /// names mapped back, unknown fields refused, and, with
    /// [`KeyFields::record_actors`], `actor` recorded. Every error is a 400
    /// `invalid_request` naming the field by the API's name.
    pub fn parse_create(&self, body: &[u8], actor: &Identity) -> Result<NewKey, AdminError> {
        let fields = self.read(body, CREATE_FIELDS, true)?;
        let created: CreateBody = from_value(Value::Object(fields)).map_err(|e| self.named(e))?;
        let mut new = created.into_new_key().map_err(|e| self.named(e))?;
        self.refuse_actor_fields(&new.metadata)?;
        if let Some((created_by, updated_by)) = &self.actors {
            let by = Value::from(actor_label(actor));
            new.metadata.insert(created_by.clone(), by.clone());
            new.metadata.insert(updated_by.clone(), by);
        }
        Ok(new)
    }

    /// The body of an update, read like [`KeyFields::parse_create`]'s. Its `metadata`
    /// is a JSON merge patch ([`KeyUpdate::metadata_patch`]); with
    /// [`KeyFields::record_actors`], `actor` is recorded as `updated_by` in that patch,
    /// so the rest of the metadata, `created_by` among it, stays.
    pub fn parse_update(&self, body: &[u8], actor: &Identity) -> Result<KeyUpdate, AdminError> {
        let fields = self.read(body, UPDATE_FIELDS, false)?;
        let changed: UpdateBody = from_value(Value::Object(fields)).map_err(|e| self.named(e))?;
        let mut update = changed.into_update().map_err(|e| self.named(e))?;
        if let Some(patch) = &update.metadata_patch {
            self.refuse_actor_fields(patch)?;
        }
        if let Some((_, updated_by)) = &self.actors {
            let by = Value::from(actor_label(actor));
            update
                .metadata_patch
                .get_or_insert_with(Map::new)
                .insert(updated_by.clone(), by);
        }
        Ok(update)
    }

    /// The metadata member recording who last changed a key, when recorded.
    pub(super) fn updated_by(&self) -> Option<&str> {
        self.actors
            .as_ref()
            .map(|(_, updated_by)| updated_by.as_str())
    }

    /// Whether `name` is one of the recorded actor fields.
    fn is_actor_field(&self, name: &str) -> bool {
        self.actors
            .as_ref()
            .is_some_and(|(created, updated)| name == created || name == updated)
    }

    /// Refuses metadata (or a merge patch of it) that names an actor field.
    fn refuse_actor_fields(&self, metadata: &Map<String, Value>) -> Result<(), AdminError> {
        match metadata.keys().find(|name| self.is_actor_field(name)) {
            Some(name) => Err(read_only(&format!("{}.{name}", self.api_name("metadata")))),
            None => Ok(()),
        }
    }

    /// A body's fields in keygate's names.
    fn read(
        &self,
        body: &[u8],
        accepted: &[&str],
        creation: bool,
    ) -> Result<Map<String, Value>, AdminError> {
        let Value::Object(given) = parse_json::<Value>(body)? else {
            return Err(AdminError::invalid("body: expected a JSON object"));
        };
        if creation {
            let name = self.api_name("name");
            let required = self.required.iter().map(String::as_str);
            if let Some(missing) = required
                .chain([name])
                .find(|field| !given.contains_key(*field))
            {
                return Err(AdminError::invalid(format!("{missing}: missing field")));
            }
        }
        let mut fields = Map::new();
        for (name, value) in given {
            if self.is_actor_field(&name) {
                return Err(read_only(&name));
            }
            if let Some((_, constant)) = self.constants.iter().find(|(c, _)| *c == name) {
                if value != *constant {
                    return Err(AdminError::invalid(format!("{name}: must be {constant}")));
                }
                continue;
            }
            match self.field_of(&name) {
                Some(field) if accepted.contains(&field) => {
                    fields.insert(field.to_owned(), value);
                }
                _ => return Err(AdminError::invalid(format!("{name}: unknown field"))),
            }
        }
        Ok(fields)
    }

    /// `error` with a leading keygate field name replaced by the API's name.
    pub(super) fn named(&self, error: AdminError) -> AdminError {
        let AdminError::Manage(crate::ManageError::InvalidRequest(message)) = &error else {
            return error;
        };
        let end = message
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(message.len());
        let (field, rest) = message.split_at(end);
        let name = self.api_name(field);
        if name == field {
            return error;
        }
        AdminError::invalid(format!("{name}{rest}"))
    }
}

/// The refusal of a body writing the actor field `name`.
fn read_only(name: &str) -> AdminError {
    AdminError::Manage(ManageError::ReadOnlyField(format!(
        "{name}: recorded by the server; it cannot be written, changed or removed"
    )))
}
