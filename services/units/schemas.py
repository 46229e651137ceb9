"""Input schemas (marshmallow): unknown fields are rejected, lengths and enums enforced."""
from __future__ import annotations

from marshmallow import Schema, fields, validate, validates_schema, ValidationError

from services.units.domain import DOCUMENT_KINDS, PERSON_ROLES, UNIT_KINDS, UNIT_LEVELS
from shared.fields import AwareDateTime, Cursor, DateString, Id, Integer, Limit, Name, Period, Text

Date = DateString


class RegisterUnit(Schema):
    unit_id = Id(load_default=None)
    name = Name(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(UNIT_KINDS))
    level = fields.String(required=True, validate=validate.OneOf(UNIT_LEVELS))
    parent_id = Id(load_default=None, allow_none=True)


class Empty(Schema):
    pass


class UnitRef(Schema):
    unit_id = Id(required=True)


class RenameUnit(UnitRef):
    name = Name(required=True)


class MoveUnit(UnitRef):
    parent_id = Id(required=True)


class SetDemonstrationSite(UnitRef):
    demonstration_site = fields.Boolean(required=True)


class SetPilotFlags(UnitRef):
    pilot_flags = fields.List(Name(50), required=True, validate=validate.Length(max=20))


class DeactivateUnit(UnitRef):
    reason = Text(500, required=True)


class ListUnits(Schema):
    unit_id = Id(required=True)
    include_inactive = fields.Boolean(load_default=False)
    limit = Limit(500, 1000)
    cursor = Cursor(load_default=None)


class RegisterPerson(Schema):
    person_id = Id(load_default=None)
    name = Name(100, required=True)
    unit_id = Id(required=True)
    post = Name(required=True)
    young_cadre = fields.Boolean(load_default=False)


class PersonRef(Schema):
    person_id = Id(required=True)


class AssignRole(PersonRef):
    role = fields.String(required=True, validate=validate.OneOf(PERSON_ROLES))
    part_time = fields.Boolean(load_default=False)  # 身兼数职


class RemoveRole(PersonRef):
    role = fields.String(required=True, validate=validate.OneOf(PERSON_ROLES))


class PromotePerson(PersonRef):
    new_post = Name(required=True)
    unit_id = Id(required=True)
    effective_on = Date(required=True)


class DocumentItem(Schema):
    text = Text(2000, required=True)
    owner_post = Name(200, load_default=None)
    score = fields.Float(load_default=None, validate=validate.Range(0, 1000))


class DraftDocument(Schema):
    doc_id = Id(load_default=None)
    unit_id = Id(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(DOCUMENT_KINDS))
    title = Name(required=True)
    items = fields.List(fields.Nested(DocumentItem), required=True,
                        validate=validate.Length(1, 500))


class ReviseDocument(Schema):
    doc_id = Id(required=True)
    title = Name(required=True)
    items = fields.List(fields.Nested(DocumentItem), required=True,
                        validate=validate.Length(1, 500))
    note = Text(1000, required=True)


class DocumentRef(Schema):
    doc_id = Id(required=True)


class CompareDocument(DocumentRef):
    from_revision = Integer(required=True, validate=validate.Range(min=1, error="版本从 1 开始"))
    to_revision = Integer(required=True, validate=validate.Range(min=1, error="版本从 1 开始"))


class ListDocuments(Schema):
    unit_id = Id(required=True)
    kind = fields.String(load_default=None, validate=validate.OneOf(DOCUMENT_KINDS))


class IssueLetter(Schema):
    period = Period(required=True)
    issuer_unit_id = Id(required=True)
    target_unit_id = Id(required=True)
    signatory_role = fields.String(required=True, validate=validate.OneOf(PERSON_ROLES))
    content = Text(5000, required=True)


class LetterRef(Schema):
    period = Period(required=True)
    target_unit_id = Id(required=True)


class SignLetter(LetterRef):
    signed_on = Date(required=True)
    signatory_role = fields.String(required=True, validate=validate.OneOf(PERSON_ROLES))


class RevokeLetter(LetterRef):
    reason = Text(500, required=True)


class Coverage(Schema):
    unit_id = Id(required=True)
    period = Period(required=True)
    limit = Limit(500, 1000)  # of the unsigned units listed
    cursor = Cursor(load_default=None)


class Step(Schema):
    name = Name(required=True)
    responsible_post = Name(required=True)
    time_limit = Name(100, load_default=None)


class MicroPowerContent(Schema):
    duties = fields.List(Text(1000), required=True, validate=validate.Length(1, 100))
    power_boundary = Text(5000, required=True)
    steps = fields.List(fields.Nested(Step), required=True, validate=validate.Length(1, 100))
    accountability = Text(2000, load_default=None)


class DraftMicroPower(Schema):
    unit_id = Id(required=True)
    post = Name(required=True)
    content = fields.Nested(MicroPowerContent, required=True)


class MicroPowerRef(Schema):
    unit_id = Id(required=True)
    post = Name(required=True)


class PublishMicroPower(MicroPowerRef):
    published_on = Date(required=True)


class PublishedMicroPower(Schema):
    unit_id = Id(required=True)


class History(Schema):
    stream = fields.String(required=True, validate=validate.OneOf(
        ("Unit", "Person", "ResponsibilityDocument", "ResponsibilityLetter", "MicroPowerList")))
    id = fields.String(required=True, validate=validate.Length(1, 300))


class AsOf(Schema):
    unit_id = Id(required=True)
    position = Integer(load_default=None, validate=validate.Range(min=1, error="日志位置从 1 开始"))
    at = AwareDateTime(load_default=None)
    limit = Limit(500, 1000)
    cursor = Cursor(load_default=None)

    @validates_schema
    def one_of(self, data, **kw):
        if (data.get("position") is None) == (data.get("at") is None):
            raise ValidationError("position 与 at 须且只能给出其一", "_schema")


class CoveragePeriod(Schema):
    period = Period(required=True)


# -- 集中廉政承诺 --------------------------------------------------------------------------------
from services.units.domain import PLEDGE_ROLES, WITNESS_KINDS  # noqa: E402
from shared.fields import Date as DayDate  # noqa: E402

PledgeYear = lambda **kw: Integer(validate=validate.Range(2000, 2100, error="年份应在 2000 至 2100 之间"), **kw)  # noqa: E731


class Witness(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(WITNESS_KINDS, error=WITNESS_KINDS.error()))
    name = Name(100, required=True)
    organisation = Name(200, load_default=None)


class RecordPledge(Schema):
    person_id = Id(required=True)
    role = fields.String(required=True, validate=validate.OneOf(
        PLEDGE_ROLES, error="必须是以下之一：%s" % "、".join(PERSON_ROLES.label(r) for r in PLEDGE_ROLES)))
    pledged_on = DayDate(required=True)
    text = Text(5000, required=True)
    witnesses = fields.List(fields.Nested(Witness), required=True,
                            validate=validate.Length(1, 20, error="见证人须有 1 至 20 人"))
    occasion = Name(200, load_default=None)


class PledgeRef(Schema):
    pledge_id = fields.String(required=True, validate=validate.Length(1, 120))


class PledgesOfYear(Schema):
    unit_id = Id(required=True)
    year = PledgeYear(required=True)


# -- 纪检委员 roster --------------------------------------------------------------------------
class RecordDisciplineTraining(Schema):
    person_id = Id(required=True)
    course = Name(200, required=True)
    trained_on = DayDate(required=True)
    hours = fields.Float(required=True, allow_nan=False)
    organiser = Name(200, load_default=None)


class DisciplineRoster(Schema):
    unit_id = Id(required=True)
    year = PledgeYear(required=True)


# -- 模范科室评选 --------------------------------------------------------------------------------
from services.units.domain import EXEMPLARY_CRITERIA  # noqa: E402


class OpenExemplaryRound(Schema):
    unit_id = Id(required=True)
    year = PledgeYear(required=True)
    title = Name(200, required=True)
    exemplars = Integer(required=True, validate=validate.Range(1, 50, error="评选名额应在 1 至 50 之间"))


class ExemplaryRoundRef(Schema):
    round_id = Id(required=True)


class Nominate(ExemplaryRoundRef):
    nominee_unit_id = Id(required=True)


class ScoreNominee(ExemplaryRoundRef):
    scorer_unit_id = Id(required=True)
    nominee_unit_id = Id(required=True)
    scores = fields.Dict(keys=fields.String(validate=validate.OneOf(EXEMPLARY_CRITERIA, error=EXEMPLARY_CRITERIA.error())),
                         values=fields.Float(allow_nan=False), required=True)


class ExemplaryRounds(Schema):
    unit_id = Id(required=True)
