// Raft simulation: log compaction, InstallSnapshot and membership changes.
import { testScenario } from './raft-seeds.js';

testScenario('snapshot_install');
testScenario('snapshot_churn');
testScenario('membership');
testScenario('membership_churn');
