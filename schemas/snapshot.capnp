# Snapshots of the projected state (the `snapshots` column family,
# docs/FORMAT.md). A snapshot is a cache: deleting every one changes no
# answer, only how long okrd takes to start.
#
# FROZEN WIRE FORMAT, as okr.capnp: ordinals never change or get reused.
# A snapshot whose formatVersion the reader does not know is ignored (the
# log is replayed instead), so the format may also be replaced wholesale.

@0xdfc8d3c8c8f3851f;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("okr::schema");

# One part of a snapshot (format 2): a snapshot is stored as parts, each
# its own message and value, so it is read, and decoded on several
# threads, a part at a time. Every part carries formatVersion, seq and
# part; part 0 also headHash, recordedAt, timeIndex and parts, and no
# entities; each later part holds a run of entities of one kind, in id
# order. Format 1 was the whole snapshot in one message (part 0 with
# every field set and parts 0), and is still read.
struct Snapshot {
  formatVersion @0 :UInt32;     # 2 (1: the whole snapshot in one message)
  seq @1 :UInt64;               # the last event folded in
  headHash @2 :Data;            # SHA-256 of that event's stored bytes
  recordedAt @3 :Int64;
  timeIndex @4 :List(TimePoint);
  units @5 :List(UnitEntity);
  cycles @6 :List(CycleEntity);
  objectives @7 :List(ObjectiveEntity);
  keyResults @8 :List(KeyResultEntity);
  part @9 :UInt32;              # this part's place, from 0
  parts @10 :UInt32;            # in part 0: how many parts there are
}

struct TimePoint {
  recordedAt @0 :Int64;
  seq @1 :UInt64;
}

struct Meta {
  seq @0 :UInt64;
  recordedAt @1 :Int64;
  actor @2 :Text;
  reason @3 :Text;
  type @4 :Text;
}

struct UnitRevision {
  meta @0 :Meta;
  kind @1 :Text;
  name @2 :Text;
  parent @3 :Text;
  email @4 :Text;
  retired @5 :Bool;
}

struct UnitEntity {
  id @0 :Text;
  revisions @1 :List(UnitRevision);
  eventSeqs @2 :List(UInt64);
}

struct CycleRevision {
  meta @0 :Meta;
  name @1 :Text;
  starts @2 :Text;
  ends @3 :Text;
  parent @4 :Text;
  closed @5 :Bool;
}

struct CycleEntity {
  id @0 :Text;
  revisions @1 :List(CycleRevision);
  eventSeqs @2 :List(UInt64);
}

struct Review {
  score @0 :Float64;
  outcome @1 :Text;
  reflection @2 :Text;
  lessons @3 :Text;
  meta @4 :Meta;
}

struct ObjectiveRevision {
  meta @0 :Meta;
  cycle @1 :Text;
  owner @2 :Text;
  title @3 :Text;
  description @4 :Text;
  parents @5 :List(Text);
  archived @6 :Bool;
  hasReview @7 :Bool;
  review @8 :Review;
}

struct Comment {
  meta @0 :Meta;
  text @1 :Text;
}

struct ObjectiveEntity {
  id @0 :Text;
  revisions @1 :List(ObjectiveRevision);
  eventSeqs @2 :List(UInt64);
  keyResults @3 :List(Text);
  comments @4 :List(Comment);
}

struct KeyResultRevision {
  meta @0 :Meta;
  objective @1 :Text;
  title @2 :Text;
  owner @3 :Text;
  metric @4 :Text;
  start @5 :Float64;
  target @6 :Float64;
  unit @7 :Text;
  weight @8 :Float64;
  removed @9 :Bool;
}

struct CheckIn {
  id @0 :Text;
  meta @1 :Meta;
  value @2 :Float64;
  hasConfidence @3 :Bool;
  confidence @4 :Float64;
  status @5 :Text;
  note @6 :Text;
  measuredAt @7 :Int64;
}

struct Correction {
  meta @0 :Meta;
  checkIn @1 :Text;
  before @2 :Float64;
  value @3 :Float64;
  note @4 :Text;
}

struct KeyResultEntity {
  id @0 :Text;
  revisions @1 :List(KeyResultRevision);
  eventSeqs @2 :List(UInt64);
  checkIns @3 :List(CheckIn);
  corrections @4 :List(Correction);
  comments @5 :List(Comment);
}
