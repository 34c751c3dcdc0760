//! Overlays of volumes: the CT put through the model's preprocessing (at its own
//! resolution, on the canonical axial grid) under a prediction and its ground truth.

use abdoseg_imaging::{
    CLASS_NAMES, Volume,
    intensity::{Intensity, Slice},
    slices::Canonical,
};
use ndarray::Array2;

use crate::{
    Error,
    overlay::{self, Pick, Selection},
};

/// What to draw: a slice, and the organ picked for it (`None`: every organ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub slice: usize,
    pub class: Option<u8>,
    pub selection: Option<Selection>,
}

impl From<Pick> for Request {
    fn from(pick: Pick) -> Self {
        Self {
            slice: pick.slice,
            class: Some(pick.class),
            selection: Some(pick.selection),
        }
    }
}

/// One PNG, named for its slice and organ (`grid` for the 2×3 grid).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub name: String,
    pub slice: usize,
    /// 0 for the grid.
    pub class: u8,
    pub selection: Option<Selection>,
    pub png: Vec<u8>,
}

/// The three volumes on the canonical grid.
#[derive(Debug)]
pub struct Scene {
    ct: Canonical<f32>,
    predicted: Canonical<u8>,
    truth: Canonical<u8>,
    intensity: Intensity,
}

impl Scene {
    /// Checks that all three volumes share one grid.
    pub fn new(
        ct: &Volume<f32>,
        predicted: &Volume<u8>,
        truth: &Volume<u8>,
        intensity: Intensity,
    ) -> Result<Self, Error> {
        for (what, geometry) in [
            ("prediction", &predicted.geometry),
            ("ground truth", &truth.geometry),
        ] {
            if !ct.geometry.same_grid(geometry) {
                return Err(Error::InvalidArgument(format!(
                    "the {what} ({}) is not on the image's grid ({})",
                    geometry.describe(),
                    ct.geometry.describe()
                )));
            }
        }
        Ok(Self {
            ct: Canonical::of(ct),
            predicted: Canonical::of(predicted),
            truth: Canonical::of(truth),
            intensity,
        })
    }

    pub fn slice_count(&self) -> usize {
        self.ct.slice_count()
    }

    /// Best and worst slices per organ.
    pub fn picks(&self) -> Vec<Pick> {
        overlay::pick_slices(self.predicted.data.view(), self.truth.data.view())
    }

    fn gray(&self, z: usize) -> Array2<u8> {
        match self.intensity.apply(self.ct.axial(z)) {
            Slice::Gray(gray) => gray,
            // zscore values are not gray levels: show the window instead.
            Slice::Float(_) => self.intensity.window.apply(self.ct.axial(z)),
        }
    }

    /// Renders each request: the organ's own picture (or all four organs' pictures when
    /// no organ is named) and the slice's grid, each slice's grid once. `prefix` starts
    /// every name, e.g. a case id.
    pub fn render(&self, requests: &[Request], prefix: &str) -> Result<Vec<Rendered>, Error> {
        let mut out: Vec<Rendered> = Vec::new();
        for request in requests {
            let z = request.slice;
            if z >= self.slice_count() {
                return Err(Error::InvalidArgument(format!(
                    "slice {z} is outside the volume's {} axial slices",
                    self.slice_count()
                )));
            }
            let (ct, p, t) = (self.gray(z), self.predicted.axial(z), self.truth.axial(z));
            let classes: Vec<u8> = match request.class {
                Some(class) => vec![class],
                None => (1..CLASS_NAMES.len() as u8).collect(),
            };
            let encode = |picture: overlay::Picture| {
                picture.png().map_err(|e| Error::Internal(e.to_string()))
            };
            for class in classes {
                let suffix = request
                    .selection
                    .map_or(String::new(), |s| format!("-{}", s.as_str()));
                out.push(Rendered {
                    name: format!(
                        "{prefix}slice-{z:03}-{}{suffix}",
                        CLASS_NAMES[usize::from(class)]
                    ),
                    slice: z,
                    class,
                    selection: request.selection,
                    png: encode(overlay::organ(ct.view(), p, t, class))?,
                });
            }
            if !out.iter().any(|r| r.class == 0 && r.slice == z) {
                out.push(Rendered {
                    name: format!("{prefix}slice-{z:03}-grid"),
                    slice: z,
                    class: 0,
                    selection: None,
                    png: encode(overlay::grid(ct.view(), p, t))?,
                });
            }
        }
        Ok(out)
    }
}
