//! What the user says and how loud the business is: 20 ms frames of 48 kHz mono audio
//! from silence, a tone or a WAV file, and the level (dBFS) of decoded audio.

/// Samples in one 20 ms frame at 48 kHz.
pub const FRAME: usize = 960;
pub const RATE: u32 = 48_000;
/// The quietest level reported: RFC 6464's floor, for digital silence.
pub const FLOOR_DBFS: f64 = -127.0;
/// The longest WAV the user plays, in seconds: bounds the memory of one call.
pub const MAX_WAV_SECS: usize = 300;

/// What the user's microphone picks up.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Silence,
    /// A sine at this frequency, -10 dBFS peak, until told otherwise.
    Tone {
        hz: f64,
        phase: u64,
    },
    /// 48 kHz mono samples, played once, then silence.
    Clip {
        samples: Vec<f32>,
        at: usize,
    },
}

impl Source {
    pub fn tone(hz: f64) -> Source {
        Source::Tone { hz, phase: 0 }
    }

    pub fn is_silent(&self) -> bool {
        matches!(self, Source::Silence)
    }

    /// The next 20 ms, or `None` for silence (the caller sends its cached silent frame).
    pub fn next_frame(&mut self) -> Option<[f32; FRAME]> {
        let mut out = [0f32; FRAME];
        match self {
            Source::Silence => return None,
            Source::Tone { hz, phase } => {
                let amp = 10f32.powf(-10.0 / 20.0);
                for (i, s) in out.iter_mut().enumerate() {
                    let t = (*phase + i as u64) as f64 / RATE as f64;
                    *s = amp * (2.0 * std::f64::consts::PI * *hz * t).sin() as f32;
                }
                // Phase wraps each second, exact for whole-hertz tones.
                *phase = (*phase + FRAME as u64) % RATE as u64;
            }
            Source::Clip { samples, at } => {
                if *at >= samples.len() {
                    *self = Source::Silence;
                    return None;
                }
                let end = (*at + FRAME).min(samples.len());
                out[..end - *at].copy_from_slice(&samples[*at..end]);
                *at = end;
            }
        }
        Some(out)
    }
}

/// RMS level of samples in dBFS (a full-scale sine reads -3 dBFS), floored.
pub fn level_dbfs(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return FLOOR_DBFS;
    }
    let sum: f64 = samples.iter().map(|s| (*s as f64) * (*s as f64)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms <= 0.0 {
        return FLOOR_DBFS;
    }
    (20.0 * rms.log10()).max(FLOOR_DBFS)
}

/// A PCM WAV file (8/16/24/32-bit integer or 32-bit float, any channels and rate) as
/// 48 kHz mono samples; the text says what is wrong with one that is not.
pub fn wav_to_48k_mono(bytes: &[u8]) -> Result<Vec<f32>, String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a WAV file (no RIFF/WAVE header)".into());
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    let mut data: Option<&[u8]> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body = &bytes[pos + 8..(pos + 8).saturating_add(len).min(bytes.len())];
        match id {
            b"fmt " if body.len() >= 16 => {
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                fmt = Some((u16_at(0), u16_at(2), rate, u16_at(14)));
            }
            b"data" => data = Some(body),
            _ => {}
        }
        pos = pos.saturating_add(8).saturating_add(len + (len & 1));
    }
    let (format, channels, rate, bits) = fmt.ok_or("the WAV file has no fmt chunk")?;
    let data = data.ok_or("the WAV file has no data chunk")?;
    if channels == 0 || !(8_000..=192_000).contains(&rate) {
        return Err(format!("unsupported WAV: {channels} channels at {rate} Hz"));
    }
    // 1 = integer PCM, 3 = IEEE float, 0xFFFE = extensible (taken by its bit depth).
    let float = format == 3;
    let width = (bits / 8) as usize;
    if !matches!((format, bits), (1 | 0xFFFE, 8 | 16 | 24 | 32) | (3, 32)) {
        return Err(format!(
            "unsupported WAV encoding: format {format}, {bits} bits (PCM 8/16/24/32-bit or 32-bit float)"
        ));
    }
    let frame_bytes = width * channels as usize;
    let sample = |b: &[u8]| -> f32 {
        match (float, width) {
            (true, _) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            (false, 1) => (b[0] as f32 - 128.0) / 128.0,
            (false, 2) => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
            (false, 3) => (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0,
            (false, _) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0,
        }
    };
    let mono: Vec<f32> = data
        .chunks_exact(frame_bytes)
        .map(|f| f.chunks_exact(width).map(sample).sum::<f32>() / channels as f32)
        .collect();
    if mono.len() / rate as usize > MAX_WAV_SECS {
        return Err(format!(
            "the WAV file is {} s long; the user plays at most {MAX_WAV_SECS} s",
            mono.len() / rate as usize
        ));
    }
    // Linear resampling: enough for a test signal's level and pitch.
    let out_len = (mono.len() as u64 * RATE as u64 / rate as u64) as usize;
    let step = rate as f64 / RATE as f64;
    Ok((0..out_len)
        .map(|i| {
            let x = i as f64 * step;
            let j = x as usize;
            let frac = (x - j as f64) as f32;
            let a = mono[j.min(mono.len() - 1)];
            let b = mono[(j + 1).min(mono.len() - 1)];
            a + (b - a) * frac
        })
        .collect())
}

#[cfg(test)]
pub(crate) fn wav_16bit_mono(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_is_minus_13_dbfs_rms_and_silence_is_the_floor() {
        let mut t = Source::tone(440.0);
        let frame = t.next_frame().unwrap();
        let level = level_dbfs(&frame);
        assert!((level - -13.0).abs() < 0.3, "{level}");
        assert_eq!(level_dbfs(&[0.0; FRAME]), FLOOR_DBFS);
        assert_eq!(Source::Silence.next_frame(), None);
    }

    #[test]
    fn a_wav_is_resampled_to_48k_and_played_once() {
        let samples: Vec<i16> = (0..8000)
            .map(|i| if i % 2 == 0 { 8000 } else { -8000 })
            .collect();
        let pcm = wav_to_48k_mono(&wav_16bit_mono(8000, &samples)).unwrap();
        assert_eq!(pcm.len(), 48_000);
        let mut clip = Source::Clip {
            samples: pcm,
            at: 0,
        };
        let frames = std::iter::from_fn(|| clip.next_frame()).count();
        assert_eq!(frames, 50);
        assert!(clip.is_silent());
    }

    #[test]
    fn a_file_that_is_not_a_wav_says_why() {
        assert!(wav_to_48k_mono(b"hello").unwrap_err().contains("RIFF"));
        let mut bad = wav_16bit_mono(8000, &[0; 10]);
        bad[34] = 12; // 12 bits per sample
        assert!(wav_to_48k_mono(&bad).unwrap_err().contains("12 bits"));
    }
}
