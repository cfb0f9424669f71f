// Raft simulation: elections, pre-vote with check-quorum, and leadership transfer.
import { testScenario } from './raft-seeds.js';

testScenario('initial_election');
testScenario('re_election');
testScenario('many_elections');
testScenario('prevote_check_quorum');
testScenario('leadership_transfer');
