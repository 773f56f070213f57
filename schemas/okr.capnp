# The okrd event log. Every value in the `events` column family is one
# flat-array-framed message whose root is `Event` (docs/FORMAT.md).
#
# FROZEN WIRE FORMAT. Ordinals (@N), enum values and the file id never change
# and are never reused; a retired field keeps its ordinal and is renamed
# `obsoleteXxx`. New fields and union members take the next free ordinal.
# Old logs must stay readable forever: this is an audit log.
#
# Next free ordinal in Event: @43.

@0x9dce4d3653e76c8b;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("okr::schema");

enum UnitKind {
  company @0;
  department @1;
  team @2;
  person @3;
}

enum Metric {
  number @0;
  percent @1;
  currency @2;
  boolean @3;
}

enum CheckInStatus {
  unset @0;
  onTrack @1;
  atRisk @2;
  offTrack @3;
}

enum Outcome {
  unset @0;
  achieved @1;
  partially @2;
  missed @3;
}

struct Event {
  seq @0 :UInt64;             # position in the log, dense from 1; equals the key
  recordedAt @1 :Int64;       # µs since the Unix epoch, UTC; never decreases with seq
  actor @2 :Text;             # the authenticated principal that caused the event
  entity @3 :Text;            # id of the entity whose stream this event extends
  version @4 :UInt64;         # that entity's version after this event, from 1
  idempotencyKey @5 :Text;    # the request's Idempotency-Key, empty when none
  reason @6 :Text;            # the writer's stated reason, empty when none
  prevHash @7 :Data;          # SHA-256 of the previous event's stored bytes (32 zero bytes for seq 1)

  union {
    unitCreated @8 :UnitCreated;
    unitRenamed @9 :UnitRenamed;
    unitMoved @10 :UnitMoved;
    unitRetired @11 :UnitRetired;

    cycleCreated @12 :CycleCreated;
    cycleChanged @13 :CycleChanged;
    cycleClosed @14 :CycleClosed;
    cycleReopened @15 :CycleReopened;

    objectiveCreated @16 :ObjectiveCreated;
    objectiveRetitled @17 :TextChange;
    objectiveDescribed @18 :TextChange;
    objectiveOwnerChanged @19 :TextChange;
    objectiveAlignmentSet @20 :AlignmentSet;
    objectiveArchived @21 :Archived;
    objectiveRestored @22 :Restored;

    keyResultAdded @23 :KeyResultAdded;
    keyResultTitleChanged @24 :TextChange;
    keyResultStartChanged @25 :NumberChange;
    keyResultTargetChanged @26 :NumberChange;
    keyResultUnitChanged @27 :TextChange;
    keyResultWeightChanged @28 :NumberChange;
    keyResultOwnerChanged @29 :TextChange;
    keyResultMetricChanged @30 :MetricChange;
    keyResultRemoved @31 :Archived;

    checkInRecorded @32 :CheckInRecorded;    # entity = the key result
    checkInCorrected @33 :CheckInCorrected;  # entity = the key result
    commentAdded @34 :CommentAdded;          # entity = the objective or key result
    objectiveReviewed @35 :ObjectiveReviewed;

    unitEmailChanged @36 :TextChange;

    logSigningKey @37 :LogSigningKey;        # entity = okrd:log, actor = system:okrd

    webhookRegistered @38 :WebhookRegistered;  # entity = webhook:<id>
    webhookRemoved @39 :WebhookRemoved;        # entity = webhook:<id>
    webhookDisabled @40 :WebhookDisabled;      # entity = webhook:<id>, actor = system:okrd

    subjectErased @42 :SubjectErased;          # entity = the person unit (SPEC §10)
  }

  # Personal fields sealed under their subject's key (SPEC §10,
  # docs/FORMAT.md "Sealed fields"). A field listed here is empty in the
  # event's body; its text is the plaintext of one entry. Empty in events
  # written before sealing existed, and in events with nothing personal.
  sealed @41 :List(SealedText);
}

# Which text of an event a SealedText holds. `before` and `after` are the
# two sides of unitRenamed and unitEmailChanged; `reason` is the event's own.
enum PersonalField {
  name @0;
  email @1;
  note @2;
  text @3;
  reflection @4;
  lessons @5;
  reason @6;
  before @7;
  after @8;
}

struct SealedText {
  field @0 :PersonalField;
  subject @1 :Text;           # the person unit whose key seals it
  box @2 :Data;               # AES-256-GCM of the UTF-8 text: the 12-byte
                              # random nonce, the ciphertext, the 16-byte tag
}

# An erasure (SPEC §10): the subject's key was deleted, so every field
# sealed under it reads as erased from now on. Who: the actor; when:
# recordedAt; why: reason. The stored bytes of earlier events never change.
struct SubjectErased {}

struct UnitCreated {
  kind @0 :UnitKind;
  name @1 :Text;
  parent @2 :Text;            # empty for the company
  email @3 :Text;             # persons only; may be empty
}

struct UnitRenamed {
  before @0 :Text;
  after @1 :Text;
}

struct UnitMoved {
  before @0 :Text;            # previous parent
  after @1 :Text;             # new parent
}

struct UnitRetired {}

struct CycleCreated {
  name @0 :Text;
  starts @1 :Text;            # YYYY-MM-DD
  ends @2 :Text;              # YYYY-MM-DD, after starts
  parent @3 :Text;            # enclosing cycle, empty when none
}

struct CycleChanged {
  # The whole new shape of the cycle, and what it was before.
  nameBefore @0 :Text;
  name @1 :Text;
  startsBefore @2 :Text;
  starts @3 :Text;
  endsBefore @4 :Text;
  ends @5 :Text;
  parentBefore @6 :Text;
  parent @7 :Text;
}

struct CycleClosed {}
struct CycleReopened {}

struct ObjectiveCreated {
  cycle @0 :Text;
  owner @1 :Text;
  title @2 :Text;
  description @3 :Text;
  parents @4 :List(Text);     # objectives this one aligns to
}

struct TextChange {
  before @0 :Text;
  after @1 :Text;
}

struct NumberChange {
  before @0 :Float64;
  after @1 :Float64;
}

struct MetricChange {
  before @0 :Metric;
  after @1 :Metric;
}

struct AlignmentSet {
  before @0 :List(Text);
  after @1 :List(Text);
}

struct Archived {}
struct Restored {}

struct KeyResultAdded {
  objective @0 :Text;
  title @1 :Text;
  owner @2 :Text;             # unit; the objective's owner when not given
  metric @3 :Metric;
  start @4 :Float64;
  target @5 :Float64;         # differs from start
  unit @6 :Text;              # label such as "days"
  weight @7 :Float64;         # default 1
}

struct CheckInRecorded {
  checkIn @0 :Text;           # the check-in's id
  value @1 :Float64;
  hasConfidence @2 :Bool;
  confidence @3 :Float64;     # 0..1, meaningful when hasConfidence
  status @4 :CheckInStatus;
  note @5 :Text;
  measuredAt @6 :Int64;       # µs since the Unix epoch, UTC; never after recordedAt
}

struct CheckInCorrected {
  checkIn @0 :Text;           # the check-in being corrected
  before @1 :Float64;         # the value it had
  value @2 :Float64;          # the value it has from now on
  note @3 :Text;
}

struct CommentAdded {
  text @0 :Text;              # the author is the event's actor
}

struct ObjectiveReviewed {
  score @0 :Float64;          # 0..1
  outcome @1 :Outcome;
  reflection @2 :Text;
  lessons @3 :Text;
}

struct LogSigningKey {
  # The key that signs this log's checkpoints (docs/FORMAT.md). okrd writes
  # it once, when the log gets its tree; it creates no id and changes no
  # OKR state. Auditors pin the key from here.
  origin @0 :Text;            # the log's origin: the checkpoints' first line and the key's name
  publicKey @1 :Data;         # 32-byte Ed25519 public key
}

# Webhooks (SPEC §8, docs/FORMAT.md): registering, removing and okrd's own
# disabling of one are events of the entity `webhook:<id>`. They change no
# OKR state. The full URL and the secret are never in the log (a Slack URL
# is a credential): they live in the key store, outside the data directory.
struct WebhookRegistered {
  types @0 :List(Text);       # event type names, "digest" or "*"
  cycle @1 :Text;             # only events of this cycle (and of none); empty: all
  scheme @2 :Text;            # "http" or "https"
  host @3 :Text;              # the URL's host, without port, path or query
  urlSha256 @4 :Data;         # 32-byte SHA-256 of the full URL as registered
}

struct WebhookRemoved {}

struct WebhookDisabled {
  reason @0 :Text;            # why okrd stopped delivering
  failingSince @1 :Int64;     # µs since the Unix epoch, UTC: the first failure of the run
}
