import Alarms
import Foundation
import Testing
import TrailwatchConfig
import TrailwatchRuntime
@testable import TrailwatchStages

@Suite("alarm transform: band model settings")
struct AlarmBandSettingsTests {
    static func plan(_ settings: String) -> [ConfigDiagnostic] {
        PipelinePlanner(registry: BuiltinStages.registry, environment: [:]).plan(text: """
            sources: { app: { type: stdin } }
            transforms:
              alarm:
                type: alarm
                inputs: [app]
                definition_file: alarm.json
            \(settings)
            sinks: { out: { type: console, inputs: [alarm] } }
            """, file: "p.yaml", pipelineDirectory: ".").1
    }

    @Test("band_incident_memory, band_recurrence_window and band_drift reach the band model; a recurrence window of 12h is a located error")
    func settings() {
        var config = AlarmTransform.Config()
        config.bandIncidentMemory = ConfigDuration(milliseconds: 43_200_000)
        config.bandRecurrenceWindow = ConfigDuration(milliseconds: 3_600_000)
        #expect(config.bandSettings.incidentMemory == 43_200_000)
        #expect(config.bandSettings.recurrenceWindow == 3_600_000)
        #expect(AlarmTransform.Config().bandSettings.incidentMemory == 0, "off unless asked for")
        #expect(AlarmTransform.Config().bandSettings.driftDatapoints == AnomalyBandModel.Settings().driftDatapoints, "on unless turned off")
        config.bandDrift = false
        #expect(config.bandSettings.driftDatapoints == 0)

        let errors = Self.plan("    band_incident_memory: 12h\n    band_recurrence_window: 12h\n    band_drift: false").filter { $0.severity == .error }
        #expect(errors.contains { $0.setting == "band_recurrence_window" && $0.location.line == 8 }, "\(errors)")
        #expect(!errors.contains { $0.setting == "band_incident_memory" || $0.setting == "band_drift" }, "\(errors)")
        #expect(Self.plan("    band_drift: sometimes").contains { $0.severity == .error && $0.setting == "band_drift" })
    }
}
