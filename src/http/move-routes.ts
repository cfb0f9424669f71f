// The routes of partition moves (reassignment, rebalance, decommission), beside the main route table and served
// and documented the same way (the OpenAPI details are in `openapi.ts`). Built on the acceptor (main) thread.
import type { MoveAdmin } from '../broker/move-admin.js';
import type { Route } from './server.js';

export function buildMoveRoutes(moves: MoveAdmin): Route[] {
  return [
    {
      method: 'post',
      pattern: '/admin/reassignments',
      operationId: 'reassignPartitions',
      summary: 'Move partitions to the replicas given (an explicit plan; dry_run shows it only)',
      hasBody: true,
      handle: (q, r) => moves.reassign(q, r),
    },
    {
      method: 'delete',
      pattern: '/admin/reassignments',
      operationId: 'cancelReassignments',
      summary: 'Cancel moves in progress (all, or the partitions named)',
      hasBody: true,
      handle: (q, r) => moves.cancel(q, r),
    },
    {
      method: 'post',
      pattern: '/admin/rebalance',
      operationId: 'rebalance',
      summary: 'Even out replicas over the live brokers (the proposed plan of /admin/assignment-plan)',
      hasBody: true,
      handle: (q, r) => moves.rebalance(q, r),
    },
    {
      method: 'post',
      pattern: '/admin/brokers/:broker/decommission',
      operationId: 'decommissionBroker',
      summary: 'Move every replica off a broker before it is retired',
      hasBody: true,
      handle: (q, r) => moves.decommission(q, r),
    },
    {
      method: 'post',
      pattern: '/admin/preferred-leader-election',
      operationId: 'electPreferredLeaders',
      summary: "Move each partition's leadership to its first replica now, where it is live and in sync",
      hasBody: false,
      handle: (q, r) => moves.electPreferred(q, r),
    },
    {
      method: 'get',
      pattern: '/admin/brokers/:broker/decommission',
      operationId: 'decommissionStatus',
      summary: 'How many replicas a broker still holds',
      hasBody: false,
      handle: (q, r) => moves.decommissionStatus(q, r),
    },
  ];
}
