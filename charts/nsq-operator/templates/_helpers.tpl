{{/* Chart name, truncated to a DNS label. */}}
{{- define "nsq-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or <release> when it already contains the chart name. */}}
{{- define "nsq-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nsq-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator's pods (never change them: Deployment selectors are immutable). */}}
{{- define "nsq-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nsq-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "nsq-operator.labels" -}}
helm.sh/chart: {{ include "nsq-operator.chart" . }}
{{ include "nsq-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nsq
{{- end }}

{{- define "nsq-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nsq-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nsq-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "nsq-operator.nsqdImage" -}}
{{- printf "%s:%s" .Values.defaultImages.nsqd.repository (default .Chart.AppVersion .Values.defaultImages.nsqd.tag) }}
{{- end }}

{{- define "nsq-operator.nsqlookupdImage" -}}
{{- printf "%s:%s" .Values.defaultImages.nsqlookupd.repository (default .Chart.AppVersion .Values.defaultImages.nsqlookupd.tag) }}
{{- end }}

{{- define "nsq-operator.nsqImage" -}}
{{- printf "%s:%s" .Values.defaultImages.nsq.repository (default .Chart.AppVersion .Values.defaultImages.nsq.tag) }}
{{- end }}

{{- define "nsq-operator.leaseName" -}}
{{- default (include "nsq-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The NsqCluster of the one-command install. */}}
{{- define "nsq-operator.clusterName" -}}
{{- default .Release.Name .Values.cluster.name }}
{{- end }}
