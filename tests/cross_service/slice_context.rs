//! 2.5D through gRPC: a job with neighbouring slices as channels trains, its model record
//! says so, and inference feeds the model the same channels (a 2D input would not fit
//! its first convolution); settings that cannot work are refused before anything queues.

use abdoseg_protos::{
    inference::v1::inference_service_client::InferenceServiceClient,
    training::v1::{
        JobState, StartTrainingRequest, TrainingConfig,
        training_service_client::TrainingServiceClient,
    },
};
use tonic::Code;

use crate::{
    harness::Harness,
    segment::segment_and_check,
    training::{config, get_model, small_dataset, start, wait_for_state},
};

#[tokio::test(flavor = "multi_thread")]
async fn a_three_slice_model_trains_and_segments() {
    let harness = Harness::start().await;
    let dataset_id = small_dataset(&harness).await;
    let mut training = TrainingServiceClient::new(harness.channel.clone());
    for (slices, step_mm) in [(2, 3.0), (11, 3.0), (3, 0.0), (3, 50.0)] {
        let refused = training
            .start_training(StartTrainingRequest {
                config: Some(TrainingConfig {
                    context_slices: slices,
                    context_step_mm: step_mm,
                    ..config(&dataset_id, 1)
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{slices} × {step_mm} mm"
        );
        assert!(
            refused.message().contains("context"),
            "{}",
            refused.message()
        );
    }

    let job = start(
        &mut training,
        TrainingConfig {
            context_slices: 3,
            context_step_mm: 4.0,
            ..config(&dataset_id, 1)
        },
    )
    .await;
    let job = wait_for_state(&mut training, &job.job_id).await;
    assert_eq!(job.state, JobState::Succeeded as i32, "{}", job.error);
    let model = get_model(&mut training, &job.model_id).await;
    let recorded = model.config.unwrap();
    assert_eq!(
        (recorded.context_slices, recorded.context_step_mm),
        (3, 4.0)
    );

    let mut inference = InferenceServiceClient::new(harness.channel.clone());
    segment_and_check(
        &harness,
        &mut inference,
        "raw/train/images/Case_00002_0000.nii.gz",
        &job.model_id,
    )
    .await;
    harness.stack.stop().await.unwrap();
}
