//! Profiles, pictures and settings. A changed profile reaches the user's friends and
//! devices; changed settings (the theme, …) follow the user to every device.

use serde_json::{Map, Value};

use super::{Chat, ChatError, ChatResult};
use crate::media::avatar::{self, AvatarError};
use crate::model::{EventBody, Group, NewEvent, Role, Stream, User, UserId};
use crate::store::{GroupChanges, UserRow};

/// Largest settings object, serialized.
pub const MAX_SETTINGS_BYTES: usize = 8 * 1024;

impl Chat {
    /// Changes the display name (1–64 characters, trimmed).
    pub async fn update_profile(&self, me: UserId, display_name: &str) -> ChatResult<User> {
        let name = super::accounts::normalize_display_name(display_name)?;
        self.store_profile(me, Some(name), None).await
    }

    /// Decodes, crops and re-encodes an uploaded picture, stores it and makes it the
    /// user's avatar.
    pub async fn set_avatar(&self, me: UserId, upload: Vec<u8>) -> ChatResult<User> {
        let hash = self.store_picture(upload).await?;
        self.store_profile(me, None, Some(hash)).await
    }

    /// An owner or admin sets the group's picture.
    pub async fn set_group_avatar(&self, me: UserId, id: i64, upload: Vec<u8>) -> ChatResult<Group> {
        self.role_at_least(me, id, Role::Admin).await?;
        let hash = self.store_picture(upload).await?;
        self.apply_group_changes(id, GroupChanges { avatar: Some(hash), ..Default::default() }).await
    }

    /// A stored picture's PNG bytes.
    pub async fn picture(&self, hash: &str) -> ChatResult<Vec<u8>> {
        let (blobs, hash) = (self.inner.blobs.clone(), hash.to_owned());
        tokio::task::spawn_blocking(move || blobs.get(&hash))
            .await
            .map_err(ChatError::internal)?
            .map_err(|_| ChatError::NotFound("picture"))
    }

    /// The user's settings object.
    pub async fn settings(&self, me: UserId) -> ChatResult<Value> {
        let text = self.store().settings(me).await?;
        Ok(serde_json::from_str(&text).unwrap_or_else(|_| Value::Object(Map::new())))
    }

    /// Merges `patch` into the settings (a `null` value removes a key) and pushes the
    /// result to the user's devices as `settings.updated`.
    pub async fn put_settings(&self, me: UserId, patch: Value) -> ChatResult<Value> {
        let Value::Object(patch) = patch else {
            return Err(ChatError::invalid("invalid_settings", "settings must be a JSON object"));
        };
        if let Some(theme) = patch.get("theme") {
            let ok = theme.is_null() || theme.as_str().is_some_and(|t| (1..=32).contains(&t.chars().count()));
            if !ok {
                return Err(ChatError::invalid("invalid_settings", "theme must be a name of 1 to 32 characters"));
            }
        }
        let Value::Object(mut settings) = self.settings(me).await? else { unreachable!("settings are an object") };
        for (key, value) in patch {
            if value.is_null() {
                settings.remove(&key);
            } else {
                settings.insert(key, value);
            }
        }
        let settings = Value::Object(settings);
        let text = settings.to_string();
        if text.len() > MAX_SETTINGS_BYTES {
            return Err(ChatError::invalid(
                "settings_too_large",
                format!("settings must stay under {MAX_SETTINGS_BYTES} bytes"),
            ));
        }
        let event = NewEvent::now(Stream::User(me), EventBody::SettingsUpdated { settings: settings.clone() });
        self.store().put_settings(me, text, vec![event]).await?;
        Ok(settings)
    }

    async fn store_profile(&self, me: UserId, name: Option<String>, avatar: Option<String>) -> ChatResult<User> {
        let chat = self.clone();
        let events = Box::new(move |row: &UserRow| {
            let user = chat.user_view(row);
            vec![
                NewEvent::now(Stream::Friends(me), EventBody::ProfileUpdated { user: user.clone() }),
                NewEvent::now(Stream::User(me), EventBody::ProfileUpdated { user }),
            ]
        });
        let row = self.store().update_profile(me, name, avatar, events).await?.ok_or(ChatError::Unauthorized)?;
        Ok(self.user_view(&row))
    }

    async fn store_picture(&self, upload: Vec<u8>) -> ChatResult<String> {
        let blobs = self.inner.blobs.clone();
        let stored = tokio::task::spawn_blocking(move || -> Result<String, PictureError> {
            let png = avatar::normalize(&upload).map_err(PictureError::Refused)?;
            blobs.put(&png).map_err(PictureError::Io)
        })
        .await
        .map_err(ChatError::internal)?;
        stored.map_err(|e| match e {
            PictureError::Refused(AvatarError::TooLarge) => {
                ChatError::TooLarge("pictures must be at most 2 MiB".into())
            }
            PictureError::Refused(e) => ChatError::invalid("invalid_image", e.to_string()),
            PictureError::Io(e) => ChatError::internal(format!("cannot store the picture: {e}")),
        })
    }
}

enum PictureError {
    Refused(AvatarError),
    Io(std::io::Error),
}
