//! A job with extra training datasets and a real validation dataset: every epoch reports
//! the real cases beside the validation split, in WatchJob, the job and the model record;
//! datasets prepared differently, or named twice, are refused before anything is queued.

use abdoseg_protos::{
    preprocessing::v1::preprocessing_service_client::PreprocessingServiceClient,
    training::v1::{
        JobState, StartTrainingRequest, WatchJobRequest,
        training_service_client::TrainingServiceClient, watch_job_response::Event,
    },
};
use tonic::Code;

use crate::{
    harness::Harness,
    prepare::{prepare, put_phantoms, request},
    training::{config, get_model, small_dataset, start, wait_for_state},
};

/// Prepares `cases` phantoms of `seed` as `raw/{name}` at `size` pixels.
async fn dataset(harness: &Harness, name: &str, cases: usize, seed: u64, size: u32) -> String {
    put_phantoms(&harness.storage, name, cases, seed).await;
    let mut client = PreprocessingServiceClient::new(harness.channel.clone());
    let events = prepare(&mut client, request(&format!("raw/{name}"), size))
        .await
        .unwrap();
    events.last().unwrap().dataset_id.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_validation_is_reported_every_epoch_and_recorded() {
    let harness = Harness::start().await;
    let main = small_dataset(&harness).await;
    let extra = dataset(&harness, "extra", 2, 11, 32).await;
    let real = dataset(&harness, "real", 2, 12, 32).await;
    let mut client = TrainingServiceClient::new(harness.channel.clone());
    let mut wanted = config(&main, 2);
    wanted.extra_training_dataset_ids = vec![extra.clone()];
    wanted.real_validation_dataset_id = real.clone();
    let job = start(&mut client, wanted).await;
    assert_eq!(
        job.config.as_ref().unwrap().extra_training_dataset_ids,
        vec![extra]
    );
    assert_eq!(
        job.config.as_ref().unwrap().real_validation_dataset_id,
        real
    );

    let mut stream = client
        .watch_job(WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut epochs = 0;
    while let Some(event) = stream.message().await.unwrap() {
        match event.event.unwrap() {
            Event::EpochFinished(m) => {
                epochs += 1;
                assert_eq!(m.real_validation.len(), 5, "background and four organs");
                // Every real voxel is counted once per class: TP + FN is the class's truth.
                let truth: u64 = m
                    .real_validation
                    .iter()
                    .map(|c| c.true_positives + c.false_negatives)
                    .sum();
                assert!(truth > 0);
            }
            Event::Failed(f) => panic!("the job failed: {}", f.error),
            Event::StateChanged(_)
            | Event::BatchProgress(_)
            | Event::CheckpointSaved(_)
            | Event::Finished(_) => {}
        }
    }
    assert_eq!(epochs, 2);
    let job = wait_for_state(&mut client, &job.job_id).await;
    assert_eq!(job.state, JobState::Succeeded as i32);
    let model = get_model(&mut client, &job.model_id).await;
    assert!(model.history.iter().all(|m| m.real_validation.len() == 5));
    assert!(job.history.iter().all(|m| m.real_validation.len() == 5));
}

#[tokio::test(flavor = "multi_thread")]
async fn datasets_prepared_differently_or_named_twice_are_refused() {
    let harness = Harness::start().await;
    let main = small_dataset(&harness).await;
    let other_size = dataset(&harness, "wide", 2, 13, 64).await;
    let mut client = TrainingServiceClient::new(harness.channel.clone());
    let refused = async |client: &mut TrainingServiceClient<_>, extra: Vec<String>, real: &str| {
        let mut wanted = config(&main, 1);
        wanted.extra_training_dataset_ids = extra;
        wanted.real_validation_dataset_id = real.to_owned();
        client
            .start_training(StartTrainingRequest {
                config: Some(wanted),
            })
            .await
            .unwrap_err()
    };
    let status = refused(&mut client, vec![other_size.clone()], "").await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("prepared differently"),
        "{}",
        status.message()
    );
    let status = refused(&mut client, Vec::new(), &other_size).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = refused(&mut client, vec![main.clone()], "").await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("named twice"),
        "{}",
        status.message()
    );
    let status = refused(&mut client, Vec::new(), "ds-missing").await;
    assert_eq!(status.code(), Code::NotFound);
}
