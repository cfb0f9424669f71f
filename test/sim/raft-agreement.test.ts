// Raft simulation: log agreement with and without failed followers, bounds on proposals, messages and
// rejected appends.
import { testScenario } from './raft-seeds.js';

testScenario('basic_agreement');
testScenario('follower_failure');
testScenario('no_agreement_without_majority');
testScenario('concurrent_proposals');
testScenario('rejoin_partitioned_leader');
testScenario('backup_wrong_entries');
testScenario('rpc_count');
