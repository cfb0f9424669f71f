// The public surface of the gossip core, for the shell that owns the sockets and for the broker registry.
// Pure: callable from any thread, though one GossipNode belongs to the control thread.
export {
  GOSSIP_DEFAULTS,
  type GossipConfig,
  MEMBERLIST_LAN_PROFILE,
  type Random,
  validateGossipConfig,
} from './config.js';
export {
  estimatePacketBytes,
  type GossipMessage,
  type MemberMeta,
  type MemberStateName,
  type Outgoing,
  type Packet,
  type PushPullState,
  type Transport,
} from './messages.js';
export {
  GossipNode,
  type GossipNodeOptions,
  type MemberSnapshot,
  type MembershipEvent,
  type MembershipEventKind,
  type Output,
} from './node.js';
