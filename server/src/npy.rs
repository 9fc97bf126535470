//! Reading and writing NumPy `.npy` files (little-endian, C order): what
//! `hush run` and `hush infer` take and give.

use ndarray::{ArrayD, IxDyn};
use std::fmt;

/// A malformed or unsupported `.npy` file.
#[derive(Debug)]
pub struct NpyError(String);

impl fmt::Display for NpyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ".npy: {}", self.0)
    }
}

impl std::error::Error for NpyError {}

fn err(s: impl Into<String>) -> NpyError {
    NpyError(s.into())
}

/// Parses a `.npy` file of `f4`, `f8`, `u1`, `i4` or `i8` values into `f64`.
pub fn read(bytes: &[u8]) -> Result<ArrayD<f64>, NpyError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(err("not a .npy file"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(err("truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(err(format!("format version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| err("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| err("header is not text"))?;
    let field = |key: &str| -> Result<&str, NpyError> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| err(format!("no '{key}'")))?;
        let rest = &header[at + key.len() + 2..];
        let colon = rest.find(':').ok_or_else(|| err("malformed header"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| err("malformed descr"))?;
    if field("fortran_order")?.starts_with("True") {
        return Err(err("Fortran order is not supported"));
    }
    let shape_text = field("shape")?;
    let open = shape_text.find('(').ok_or_else(|| err("malformed shape"))?;
    let close = shape_text.find(')').ok_or_else(|| err("malformed shape"))?;
    let shape: Vec<usize> = shape_text[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| err("malformed shape")))
        .collect::<Result<_, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&c| c <= 1 << 28)
        .ok_or_else(|| err("array too large"))?;
    let data = &bytes[start + header_len..];
    let (width, conv): (usize, fn(&[u8]) -> f64) = match descr {
        "<f4" => (4, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64),
        "<f8" => (8, |c| {
            f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
        }),
        "|u1" => (1, |c| c[0] as f64),
        "<i4" => (4, |c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64),
        "<i8" => (8, |c| {
            i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64
        }),
        d => {
            return Err(err(format!(
                "dtype {d} is not supported (f4, f8, u1, i4, i8 are)"
            )));
        }
    };
    if data.len() != count * width {
        return Err(err(format!(
            "{} data bytes for shape {shape:?}",
            data.len()
        )));
    }
    let values: Vec<f64> = data.chunks_exact(width).map(conv).collect();
    ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| err(e.to_string()))
}

/// Writes `x` as a little-endian `f4` `.npy` file.
pub fn write_f32(x: &ArrayD<f64>) -> Vec<u8> {
    let shape = match x.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad so that data starts on a 64-byte boundary, header ends in '\n'.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in x.iter() {
        out.extend_from_slice(&(*v as f32).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 3]), |ix| ix[0] as f64 - 0.5 * ix[1] as f64);
        let bytes = write_f32(&x);
        assert_eq!(read(&bytes).unwrap(), x);
        assert_eq!((bytes.len() - 6 * 4) % 64, 0);
        for cut in [0, 5, 9, 20, bytes.len() - 1] {
            assert!(read(&bytes[..cut]).is_err());
        }
        let mut bad = bytes.clone();
        bad[6] = 9;
        assert!(read(&bad).is_err());
    }
}
