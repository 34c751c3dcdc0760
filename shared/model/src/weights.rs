//! A model's weights as bytes (named MessagePack, full precision), for checkpoints and the
//! model registry. Decoding never panics: corrupt or foreign bytes are an error.

use burn::{
    module::Module,
    record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder},
    tensor::backend::Backend,
};

use crate::UNet;

type Bytes = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// The model's parameters as bytes.
pub fn encode<B: Backend>(model: &UNet<B>) -> Result<Vec<u8>, String> {
    Bytes::default()
        .record(model.clone().into_record(), ())
        .map_err(|e| format!("cannot encode the weights: {e}"))
}

/// Loads `bytes` into `model`, which fixes the architecture (build it from the same
/// [`crate::UNetConfig`]). Weights of another shape are an error, not a panic.
pub fn decode<B: Backend>(
    model: UNet<B>,
    bytes: &[u8],
    device: &B::Device,
) -> Result<UNet<B>, String> {
    let record = Recorder::<B>::load(&Bytes::default(), bytes.to_vec(), device)
        .map_err(|e| format!("the weights cannot be read: {e}"))?;
    let expected = shapes(&model);
    // burn asserts (panics) when a record has another number of levels than the model;
    // the caller builds the model from the config stored with the weights, so this only
    // guards against corrupt records, and must not take the process down.
    let loaded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.load_record(record)))
            .map_err(|_| "the weights do not fit this architecture".to_string())?;
    if shapes(&loaded) != expected {
        return Err("the weights do not fit this architecture".into());
    }
    Ok(loaded)
}

fn shapes<B: Backend>(model: &UNet<B>) -> Vec<Vec<usize>> {
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().dims().to_vec());
        }
    }
    let mut visitor = Shapes(Vec::new());
    model.visit(&mut visitor);
    visitor.0
}
