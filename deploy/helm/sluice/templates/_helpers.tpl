{{- define "sluice.name" -}}{{ .Chart.Name }}{{- end -}}
{{- define "sluice.fullname" -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "sluice.labels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "sluice.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}
{{- define "sluice.port" -}}{{ (split ":" .Values.config.observability.listen)._1 | default "9464" }}{{- end -}}
{{- define "sluice.collectorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}-collector
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "sluice.collectorPort" -}}{{ (split ":" .Values.config.collect.listen)._1 | default "8080" }}{{- end -}}
