{{- define "abdoseg.labels" -}}
app.kubernetes.io/name: abdoseg
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "abdoseg.grpcService" -}}
{{- $names := dict "preprocessing" "abdoseg.preprocessing.v1.PreprocessingService" "training" "abdoseg.training.v1.TrainingService" "inference" "abdoseg.inference.v1.InferenceService" "metrics" "abdoseg.metrics.v1.MetricsService" -}}
{{- get $names . -}}
{{- end }}
