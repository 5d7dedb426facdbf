//! Call recordings, played in the dashboard through the collector.
//!
//! A PBX reports a recording URL with the call. Many PBXs want their own
//! credentials to hand the file over (Twilio's REST API takes the account
//! SID and auth token, a FreeSWITCH box behind basic auth), and those must
//! never reach a browser: `GET /v1/calls/{id}/recording` fetches the file
//! with the site's credentials for that PBX and streams it on, passing the
//! browser's `Range` through so the audio element can seek. Credentials
//! are sent only to the hosts configured with them, so a recording URL
//! pointing elsewhere cannot collect them.
//!
//! The demo's calls carry recordings the collector makes itself
//! ([`demo_wav`]): a few seconds of ringing and two voices, as WAV.
//!
//! Sections: byte ranges; the demo's audio. The settings are
//! [`crate::pbx::recordings`], the HTTP side [`crate::http::recordings`], the
//! SQL [`crate::storage::sqlite::recordings`].

pub use crate::pbx::recordings::{Credentials, RecordingAuth, Recordings};
use crate::storage::StorageError;
pub use crate::storage::money::DEMO_PBX;
pub use crate::storage::recordings::{CallRecording, RecordingStore};

// ------------------------------------------------------------ byte ranges

/// A `Range: bytes=…` request against a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No range, or one this server answers whole (several ranges).
    Whole,
    /// `first..=last`, within the body.
    Part { first: u64, last: u64 },
    /// Starts past the end: 416.
    Unsatisfiable,
}

/// Reads one `bytes=` range (`a-b`, `a-`, `-n`). A header that is not
/// one is ignored, as RFC 9110 lets a server do.
pub fn byte_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return ByteRange::Whole };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return ByteRange::Whole };
    let (a, b) = (a.trim(), b.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        // The last n bytes.
        (true, false) => match number(b) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(n) if len > 0 => ByteRange::Part { first: len.saturating_sub(n), last: len - 1 },
            Some(_) => ByteRange::Unsatisfiable,
            None => ByteRange::Whole,
        },
        (false, _) => match (number(a), if b.is_empty() { Some(u64::MAX) } else { number(b) }) {
            (Some(first), Some(last)) if first <= last => {
                if first >= len {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Part { first, last: last.min(len - 1) }
                }
            }
            _ => ByteRange::Whole,
        },
        (true, true) => ByteRange::Whole,
    }
}

// --------------------------------------------------------- the demo's audio

/// The recording URL of a demo call: the collector makes its audio.
pub const DEMO_SCHEME: &str = "ringsource-demo:";

const RATE: u32 = 8000;

/// A few seconds of a phone call, as 8 kHz 16-bit mono WAV: two rings of
/// the Russian ringback tone (425 Hz), then two voices taking turns,
/// each syllable a vowel-like tone with its own pitch. `seed` varies the
/// length and the voices, so calls sound different.
pub fn demo_wav(seed: u64) -> Vec<u8> {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut samples: Vec<f32> = Vec::new();
    let tone = |samples: &mut Vec<f32>, secs: f32, f: &dyn Fn(f32) -> f32| {
        let n = (secs * RATE as f32) as usize;
        samples.extend((0..n).map(|i| f(i as f32 / RATE as f32)));
    };
    for _ in 0..2 {
        tone(&mut samples, 0.8, &|t| 0.25 * (std::f32::consts::TAU * 425.0 * t).sin());
        tone(&mut samples, 0.6, &|_| 0.0);
    }
    let syllables = 10 + (next() % 8) as usize;
    let voices = [110.0 + (next() % 40) as f32, 190.0 + (next() % 50) as f32];
    for s in 0..syllables {
        let pitch = voices[(s / 3) % 2] * (0.9 + (next() % 20) as f32 / 100.0);
        let vowel = [(700.0, 1200.0), (400.0, 2000.0), (300.0, 900.0), (500.0, 1700.0)][(next() % 4) as usize];
        let secs = 0.16 + (next() % 12) as f32 / 100.0;
        tone(&mut samples, secs, &|t| {
            let envelope = (std::f32::consts::PI * t / secs).sin();
            let mut v = 0.0;
            for h in 1..=12 {
                let f = pitch * h as f32;
                // Harmonics near the vowel's formants carry it.
                let gain =
                    1.0 / (1.0 + ((f - vowel.0) / 150.0).powi(2)) + 0.6 / (1.0 + ((f - vowel.1) / 200.0).powi(2));
                v += gain * (std::f32::consts::TAU * f * t).sin();
            }
            0.2 * envelope * v
        });
        tone(&mut samples, 0.04 + (next() % 10) as f32 / 100.0, &|_| 0.0);
    }
    wav(&samples)
}

/// 16-bit PCM WAV of `samples` in -1..1 at [`RATE`].
fn wav(samples: &[f32]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        let v = (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pbx::recordings::{RawRecordingAuth, RawRecordings};

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        use ByteRange::*;
        assert_eq!(byte_range(None, 100), Whole);
        assert_eq!(byte_range(Some("bytes=0-"), 100), Part { first: 0, last: 99 });
        assert_eq!(byte_range(Some("bytes=10-19"), 100), Part { first: 10, last: 19 });
        assert_eq!(byte_range(Some("bytes=90-200"), 100), Part { first: 90, last: 99 });
        assert_eq!(byte_range(Some("bytes=-10"), 100), Part { first: 90, last: 99 });
        assert_eq!(byte_range(Some("bytes=-1000"), 100), Part { first: 0, last: 99 });
        assert_eq!(byte_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=5-2"), 100), Whole);
        assert_eq!(byte_range(Some("bytes=0-1,5-6"), 100), Whole);
        assert_eq!(byte_range(Some("items=0-1"), 100), Whole);
        assert_eq!(byte_range(Some("bytes=x-"), 100), Whole);
    }

    #[test]
    fn the_demo_audio_is_a_wav_of_a_few_seconds() {
        let a = demo_wav(7);
        assert_eq!(&a[..4], b"RIFF");
        assert_eq!(&a[8..16], b"WAVEfmt ");
        let secs = (a.len() - 44) as f64 / f64::from(RATE * 2);
        assert!((4.0..12.0).contains(&secs), "{secs} s");
        assert_eq!(a, demo_wav(7));
        assert_ne!(a, demo_wav(8));
        // Not silence.
        let loud = a[44..].chunks(2).filter(|c| i16::from_le_bytes([c[0], c[1]]).abs() > 3000).count();
        assert!(loud > 1000, "{loud}");
    }

    #[test]
    fn credentials_go_only_to_their_hosts() {
        let mut raw = RawRecordings::new();
        raw.insert(
            "twilio".into(),
            RawRecordingAuth {
                user: Some("AC1".into()),
                password: Some("x".into()),
                token: None,
                hosts: vec!["API.twilio.com".into()],
            },
        );
        let env =
            |name: &str| (name == "RINGSOURCE_SITE_SHOP_RECORDINGS_TWILIO_PASSWORD").then(|| "from-env".to_owned());
        let r = Recordings::from_raw("shop", raw, &env).unwrap();
        let url = url::Url::parse("https://api.twilio.com/2010-04-01/Recordings/RE1.mp3").unwrap();
        assert_eq!(
            r.credentials_for("twilio", &url),
            Some(&Credentials::Basic { user: "AC1".into(), password: "from-env".into() })
        );
        assert_eq!(r.credentials_for("twilio", &url::Url::parse("https://evil.example/r.mp3").unwrap()), None);
        assert_eq!(r.credentials_for("generic", &url), None);
        let mut bad = RawRecordings::new();
        bad.insert(
            "generic".into(),
            RawRecordingAuth { token: Some("t".into()), user: Some("u".into()), ..Default::default() },
        );
        let issues = Recordings::from_raw("shop", bad, &|_| None).unwrap_err();
        assert_eq!(issues.len(), 2, "{issues:?}");
    }
}

/// Why a recording could not be played.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("no call {0}")]
    UnknownCall(i64),
    #[error("call {0} has no recording (the PBX sent none)")]
    NoRecording(i64),
    #[error("the recording of call {id} could not be fetched from the PBX: {reason}")]
    Unavailable { id: i64, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}
