//! What the recording route reads of a call: the port's type and
//! [`RecordingStore`]; the SQL is [`crate::storage::sqlite::recordings`].

use crate::storage::StorageError;

/// A call's site, PBX and recording URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecording {
    pub site: String,
    pub pbx: String,
    pub url: Option<String>,
}

/// A call's recording, by call id.
pub trait RecordingStore: Send + Sync {
    fn call(&self, id: i64) -> Result<Option<CallRecording>, StorageError>;
}
