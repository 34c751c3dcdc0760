//! Training through gRPC: a job runs, streams its events and registers a model that
//! loads; bad requests are refused; jobs queue and cancel; and a kill -9 of the training
//! service mid-epoch resumes from the last checkpoint with a history without gap or repeat.

use std::time::Duration;

use abdoseg_model::{UNetConfig, device::CpuBackend, weights};
use abdoseg_protos::{
    common::v1::{IntensityScheme, PreprocessingConfig},
    preprocessing::v1::{
        prepare_dataset_response::Event as PrepareEvent,
        preprocessing_service_client::PreprocessingServiceClient,
    },
    training::v1::{
        Augmentation, CancelJobRequest, ClassWeighting, GetJobRequest, GetModelRequest, Job,
        JobState, ListJobsRequest, ListModelsRequest, Normalization, StartTrainingRequest,
        TrainingConfig, WatchJobRequest, training_service_client::TrainingServiceClient,
        watch_job_response::Event,
    },
};
use abdoseg_storage::{Key, Storage, StoreConfig};
use tonic::{Code, transport::Channel};

use crate::{
    harness::{Harness, Options, spawn_binary},
    prepare::{prepare, put_phantoms, request},
};

/// Five phantoms prepared at 32×32: a dataset that trains in seconds.
pub async fn small_dataset(harness: &Harness) -> String {
    put_phantoms(&harness.storage, "train", 5, 3).await;
    let mut client = PreprocessingServiceClient::new(harness.channel.clone());
    let events = prepare(&mut client, request("raw/train", 32))
        .await
        .unwrap();
    let last = events.last().unwrap();
    assert!(matches!(last.event, Some(PrepareEvent::DatasetReady(_))));
    last.dataset_id.clone()
}

pub fn config(dataset_id: &str, epochs: u32) -> TrainingConfig {
    TrainingConfig {
        dataset_id: dataset_id.into(),
        depth: 4,
        base_filters: 4,
        batch_size: 4,
        epochs,
        learning_rate: 3e-3,
        slices_per_epoch: 16,
        foreground_oversampling: 0.5,
        class_weighting: ClassWeighting::InverseSqrtFrequency as i32,
        augmentation: Some(Augmentation::default()), // disabled: faster
        seed: 5,
        ..TrainingConfig::default()
    }
}

pub async fn start(client: &mut TrainingServiceClient<Channel>, config: TrainingConfig) -> Job {
    client
        .start_training(StartTrainingRequest {
            config: Some(config),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
}

async fn get(client: &mut TrainingServiceClient<Channel>, job_id: &str) -> Job {
    client
        .get_job(GetJobRequest {
            job_id: job_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
}

pub async fn wait_for_state(client: &mut TrainingServiceClient<Channel>, job_id: &str) -> Job {
    for _ in 0..600 {
        let job = get(client, job_id).await;
        if ![JobState::Queued as i32, JobState::Running as i32].contains(&job.state) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("job {job_id} did not end");
}

/// A registered model's record, by id or `latest`.
pub async fn get_model(
    client: &mut TrainingServiceClient<Channel>,
    id: &str,
) -> abdoseg_protos::training::v1::Model {
    client
        .get_model(GetModelRequest {
            model_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap()
}

/// The registered model's weights load into the architecture its record names.
async fn assert_model_loads(
    storage: &Storage,
    client: &mut TrainingServiceClient<Channel>,
    id: &str,
) {
    let model = get_model(client, id).await;
    let config = model.config.unwrap();
    let bytes = storage
        .get(&Key::parse(&model.weights.unwrap().key).unwrap())
        .await
        .unwrap();
    assert_eq!(
        config.normalization,
        Normalization::Instance as i32,
        "the default"
    );
    let net = UNetConfig::new(abdoseg_model::Architecture::Unet1)
        .with_depth(config.depth as usize)
        .with_base_filters(config.base_filters as usize)
        .with_normalization(abdoseg_model::Normalization::Instance)
        .init::<CpuBackend>(&Default::default());
    weights::decode(net, &bytes, &Default::default()).expect("the weights load");
    let wrong = UNetConfig::new(abdoseg_model::Architecture::Unet1)
        .with_depth(config.depth as usize + 1)
        .with_base_filters(config.base_filters as usize)
        .with_normalization(abdoseg_model::Normalization::Instance)
        .init::<CpuBackend>(&Default::default());
    assert!(weights::decode(wrong, &bytes, &Default::default()).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_trains_streams_its_events_and_registers_a_model() {
    let harness = Harness::start().await;
    let dataset_id = small_dataset(&harness).await;
    let mut client = TrainingServiceClient::new(harness.channel.clone());
    let job = start(&mut client, config(&dataset_id, 3)).await;
    assert_eq!(job.state, JobState::Queued as i32);

    let mut stream = client
        .watch_job(WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let (mut batches, mut epochs, mut checkpoints, mut finished) = (0, Vec::new(), 0, None);
    while let Some(event) = stream.message().await.unwrap() {
        match event.event.unwrap() {
            Event::BatchProgress(p) => {
                assert_eq!(p.batches_total, 4, "16 slices in batches of 4");
                batches += 1;
            }
            Event::EpochFinished(m) => epochs.push(m.epoch),
            Event::CheckpointSaved(_) => checkpoints += 1,
            Event::Finished(f) => finished = Some(f),
            Event::Failed(f) => panic!("the job failed: {}", f.error),
            Event::StateChanged(_) => {}
        }
    }
    let finished = finished.expect("the stream ends with the job's end");
    assert!(batches >= 8, "{batches} batch events");
    assert_eq!(checkpoints, 3);
    // The watcher subscribed before the first epoch could end.
    assert_eq!(epochs, vec![1, 2, 3]);

    let job = get(&mut client, &job.job_id).await;
    assert_eq!(job.state, JobState::Succeeded as i32);
    assert_eq!(job.model_id, finished.model_id);
    assert_eq!(job.best_epoch, finished.best_epoch);
    let history: Vec<u32> = job.history.iter().map(|m| m.epoch).collect();
    assert_eq!(history, vec![1, 2, 3]);
    assert!(
        job.history.iter().all(|m| m.real_validation.is_empty()),
        "no real validation dataset, no real metrics"
    );
    assert_eq!(
        job.history[0].validation.len(),
        5,
        "background and four organs"
    );

    let latest = client
        .get_model(GetModelRequest {
            model_id: "latest".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(latest.model_id, job.model_id);
    assert_eq!(latest.dataset_id, dataset_id);
    assert_eq!(latest.history.len(), 3);
    assert!(latest.parameter_count > 0);
    let preprocessing = latest.config.as_ref().unwrap().preprocessing.unwrap();
    assert_eq!(
        (preprocessing.slice_width, preprocessing.slice_height),
        (32, 32)
    );
    assert_eq!(preprocessing.scheme, IntensityScheme::He as i32);
    assert_model_loads(&harness.storage, &mut client, &job.model_id).await;

    let models = client
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(models.len(), 1);
    let jobs = client
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].history.is_empty(), "lists leave the history out");

    // Watching a finished job replays its end and closes.
    let mut replay = client
        .watch_job(WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(event) = replay.message().await.unwrap() {
        last = event.event;
    }
    assert!(matches!(last, Some(Event::Finished(_))));
    harness.stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_refused_and_jobs_queue_and_cancel() {
    let harness = Harness::start().await;
    let dataset_id = small_dataset(&harness).await;
    let mut client = TrainingServiceClient::new(harness.channel.clone());
    let refused = |config: TrainingConfig| {
        let mut client = client.clone();
        async move {
            client
                .start_training(StartTrainingRequest {
                    config: Some(config),
                })
                .await
                .unwrap_err()
                .code()
        }
    };
    assert_eq!(refused(config("ds-unknown", 1)).await, Code::NotFound);
    assert_eq!(
        refused(TrainingConfig {
            depth: 7, // 32 is not divisible by 64
            ..config(&dataset_id, 1)
        })
        .await,
        Code::InvalidArgument
    );
    assert_eq!(
        refused(TrainingConfig {
            class_weighting: ClassWeighting::Manual as i32,
            class_weights: vec![1.0, 2.0],
            ..config(&dataset_id, 1)
        })
        .await,
        Code::InvalidArgument
    );
    assert_eq!(
        refused(TrainingConfig {
            preprocessing: Some(PreprocessingConfig {
                scheme: IntensityScheme::Clahe as i32,
                slice_width: 32,
                slice_height: 32,
                ..PreprocessingConfig::default()
            }),
            ..config(&dataset_id, 1)
        })
        .await,
        Code::InvalidArgument,
        "preprocessing other than the dataset's"
    );
    assert_eq!(
        refused(TrainingConfig {
            foreground_oversampling: 1.5,
            ..config(&dataset_id, 1)
        })
        .await,
        Code::InvalidArgument
    );
    // The hostile probe's crash loop: 4,294,967,295 draws an epoch (34 GB of indices),
    // and a network that could never fit in memory, are refused before anything is queued.
    assert_eq!(
        refused(TrainingConfig {
            slices_per_epoch: u32::MAX,
            ..config(&dataset_id, 1)
        })
        .await,
        Code::InvalidArgument
    );
    let absurd = client
        .clone()
        .start_training(StartTrainingRequest {
            config: Some(TrainingConfig {
                base_filters: 256,
                batch_size: 1024,
                ..config(&dataset_id, 1)
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(absurd.code(), Code::InvalidArgument);
    assert!(absurd.message().contains("MiB"), "{}", absurd.message());
    let listed = client
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.jobs.is_empty(), "nothing was queued");

    // One job runs at a time here: the second waits in the queue.
    let long = start(&mut client, config(&dataset_id, 10_000)).await;
    let queued = start(&mut client, config(&dataset_id, 1)).await;
    let mut stream = client
        .watch_job(WatchJobRequest {
            job_id: long.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(event) = stream.message().await.unwrap() {
        if matches!(event.event, Some(Event::BatchProgress(_))) {
            break;
        }
    }
    assert_eq!(
        get(&mut client, &queued.job_id).await.state,
        JobState::Queued as i32
    );
    let cancelled = client
        .cancel_job(CancelJobRequest {
            job_id: queued.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled as i32);
    let cancelled = client
        .cancel_job(CancelJobRequest {
            job_id: long.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled as i32);
    assert!(cancelled.model_id.is_empty());
    let err = client
        .cancel_job(CancelJobRequest {
            job_id: "job-missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    harness.stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_training_service_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let storage = Storage::open(&StoreConfig::new(store.parse().unwrap())).unwrap();
    let harness = Harness::start_with(storage.clone(), Options::default(), None).await;
    let dataset_id = small_dataset(&harness).await;
    harness.stack.stop().await.unwrap();

    let serve = ["serve", "training", "--store", store.as_str()];
    let (mut first, url) = spawn_binary(&serve, &[]);
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let mut client = TrainingServiceClient::new(channel);
    let job = start(
        &mut client,
        TrainingConfig {
            slices_per_epoch: 48,
            ..config(&dataset_id, 4)
        },
    )
    .await;
    let mut stream = client
        .watch_job(WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    // Kill without warning in the middle of epoch 2, after epoch 1's checkpoint.
    let mut first_epoch = None;
    while let Some(event) = stream.message().await.unwrap() {
        match event.event.unwrap() {
            Event::EpochFinished(m) => first_epoch = Some(m),
            Event::BatchProgress(p) if p.epoch == 2 && p.batch >= 3 => break,
            Event::Failed(f) => panic!("{}", f.error),
            Event::StateChanged(_)
            | Event::BatchProgress(_)
            | Event::CheckpointSaved(_)
            | Event::Finished(_) => {}
        }
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let first_epoch = first_epoch.expect("epoch 1 finished before the kill");

    let (mut second, url) = spawn_binary(&serve, &[]);
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let mut client = TrainingServiceClient::new(channel);
    let done = wait_for_state(&mut client, &job.job_id).await;
    assert_eq!(done.state, JobState::Succeeded as i32, "{}", done.error);
    let epochs: Vec<u32> = done.history.iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, vec![1, 2, 3, 4], "no gap and no repeat");
    assert_eq!(
        done.history[0], first_epoch,
        "epoch 1 was kept from before the kill, not trained again"
    );
    assert_model_loads(&storage, &mut client, &done.model_id).await;
    second.kill().unwrap();
    second.wait().unwrap();
}

/// A job whose runs ended with the process three times in a row (found `running` at
/// start each time) fails with its reason instead of taking the process down again; the
/// service keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_keeps_crashing_the_process_is_failed_not_retried() {
    use abdoseg_training::record::{JobRecord, JobSpec, JobState as StoredState, MAX_CRASHES};
    let storage = Storage::in_memory();
    let spec = JobSpec {
        name: "crasher".into(),
        dataset_id: "ds-crasher".into(),
        extra_training_dataset_ids: Vec::new(),
        real_validation_dataset_id: None,
        training: abdoseg_model::train::TrainingConfig {
            architecture: abdoseg_model::Architecture::Unet1,
            normalization: abdoseg_model::Normalization::Instance,
            depth: 4,
            base_filters: 4,
            batch_size: 4,
            epochs: 1,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            loss: abdoseg_model::train::LossKind::CeDice,
            class_weights: None,
            foreground_share: 0.0,
            augmentation: abdoseg_model::train::Augmentation::none(),
            seed: 1,
            early_stopping_patience: None,
            slices_per_epoch: Some(16),
            context: abdoseg_model::SliceContext::TWO_D,
        },
        class_weighting: abdoseg_registry::ClassWeighting::None,
        device: abdoseg_model::device::DeviceRequest::Cpu,
    };
    let mut record = JobRecord::new("job-0000000000001-crasher".into(), spec);
    // Two crashes so far; the process died during the third run too.
    record.crashes = MAX_CRASHES - 1;
    record.set_state(StoredState::Running);
    storage
        .put_json(
            &Key::parse("jobs/job-0000000000001-crasher/job.json").unwrap(),
            &record,
        )
        .await
        .unwrap();
    let harness = Harness::start_with(storage, Options::default(), None).await;
    let mut client = TrainingServiceClient::new(harness.channel.clone());
    let job = wait_for_state(&mut client, &record.job_id).await;
    assert_eq!(job.state, JobState::Failed as i32);
    assert!(job.error.contains("not retried"), "{}", job.error);
    // Still serving.
    let listed = client
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.jobs.len(), 1);
    harness.stack.stop().await.unwrap();
}
