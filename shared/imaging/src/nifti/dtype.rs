//! The voxel types abdoseg reads, and their decoding to numbers.

/// A NIfTI datatype abdoseg reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    U8,
    I8,
    I16,
    U16,
    I32,
    F32,
    F64,
}

impl Dtype {
    /// The dtype of a NIfTI datatype code, if supported.
    pub fn from_code(code: i16) -> Option<Self> {
        Some(match code {
            2 => Self::U8,
            256 => Self::I8,
            4 => Self::I16,
            512 => Self::U16,
            8 => Self::I32,
            16 => Self::F32,
            64 => Self::F64,
            _ => return None,
        })
    }

    /// The NIfTI datatype code.
    pub fn code(self) -> i16 {
        match self {
            Self::U8 => 2,
            Self::I8 => 256,
            Self::I16 => 4,
            Self::U16 => 512,
            Self::I32 => 8,
            Self::F32 => 16,
            Self::F64 => 64,
        }
    }

    /// Bytes per voxel.
    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// Decodes one voxel from its bytes (exactly `size()` of them).
    #[inline]
    pub(crate) fn decode(self, bytes: &[u8], big_endian: bool) -> f64 {
        macro_rules! read {
            ($t:ty, $n:literal) => {{
                let mut raw = [0u8; $n];
                raw.copy_from_slice(&bytes[..$n]);
                if big_endian {
                    <$t>::from_be_bytes(raw)
                } else {
                    <$t>::from_le_bytes(raw)
                }
            }};
        }
        match self {
            Self::U8 => f64::from(bytes[0]),
            Self::I8 => f64::from(bytes[0] as i8),
            Self::I16 => f64::from(read!(i16, 2)),
            Self::U16 => f64::from(read!(u16, 2)),
            Self::I32 => f64::from(read!(i32, 4)),
            Self::F32 => f64::from(read!(f32, 4)),
            Self::F64 => read!(f64, 8),
        }
    }
}
