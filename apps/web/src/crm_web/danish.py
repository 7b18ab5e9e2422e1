"""What people read: Danish labels, Copenhagen times, and the APIs' problems in Danish.

The APIs answer codes (`"code": "R8"`, `"field": "next_activity"`) and English details for
developers; the cockpit shows each refusal in Danish beside the field it concerns. A code the
cockpit does not know is shown with a general sentence and the code, never hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo

COPENHAGEN: Final = ZoneInfo("Europe/Copenhagen")

TYPES: Final = {
    "discovery_meeting": "Afdækningsmøde",
    "proposal_meeting": "Oplægsmøde",
    "status_meeting": "Statusmøde",
    "sales_meeting": "Aftalt salgsmøde",
    "unannounced_visit": "Uanmeldt besøg",
    "contact": "Kontakt",
}
CHANNELS: Final = {
    "physical": "Fysisk",
    "phone": "Telefonisk",
    "video": "Online",
    "email": "E-mail",
}
MOVE_REASONS: Final = {
    "no_answer": "Kunden tog ikke telefonen",
    "customer_request": "Kunden bad om det",
    "consultant": "Konsulentens ønske",
    "other": "Andet",
}
ATTACHMENT_KINDS: Final = {
    "proposal": "Skriftligt, bindende oplæg",
    "agreement": "Aftale",
    "email": "E-mail",
    "other": "Andet",
}
STATUSES: Final = {"planned": "Planlagt", "completed": "Afsluttet", "cancelled": "Aflyst"}
SEGMENTS: Final = {
    "annual_agreement": "Årsaftale/kundeværdiprogram",
    "A": "A",
    "B": "B",
    "C": "C",
    "D": "D",
    "unsegmented": "Ikke segmenteret",
}
TARGET_STATUSES: Final = {
    "under": "Under mål",
    "on_target": "På mål",
    "over": "Over mål",
    "no_target": "Intet mål",
    "beside": "Tælles ikke med",
}
ROLES: Final = {"consultant": "Konsulent", "sales_manager": "Salgschef"}
DISCOVERY_FIELDS: Final = {
    "business": "Forretning",
    "situation": "Situation",
    "challenges": "Udfordringer",
    "goals_and_plans": "Mål og planer",
    "advertising_needs": "Annoncebehov",
    "potential_dkk": "Potentiale (kr. om året)",
    "competitors": "Konkurrenter",
    "strategy": "Strategi",
    "unique_traits": "Særlige kendetegn",
}
GAP_WHY: Final = {
    "overdue": "Den sidste planlagte aktivitet er overskredet",
    "became_prioritized": "Kunden er blevet prioriteret",
}
POTENTIAL_SOURCES: Final = {
    "manual": "Vurderet af salgschef",
    "discovery_meeting": "Fra afdækningsmøde",
    "import": "Importeret",
}
EVENTS: Final = {
    "planned": "Planlagt",
    "moved": "Flyttet",
    "retyped": "Type ændret",
    "edited": "Rettet",
    "reassigned": "Overdraget",
    "completed": "Afsluttet",
    "cancelled": "Aflyst",
    "registered": "Registreret bagefter",
    "attachment_added": "Bilag vedhæftet",
    "imported": "Importeret",
}
# A customer's history as segmentation names its events, and why a segment changed.
CUSTOMER_EVENTS: Final = {
    "registered": "Oprettet",
    "renamed": "Omdøbt",
    "owner_changed": "Ny ansvarlig",
    "potential_assessed": "Potentiale vurderet",
    "agreement_started": "Årsaftale indgået",
    "agreement_ended": "Årsaftale ophørt",
    "value_programme_set": "Med i kundeværdiprogrammet",
    "value_programme_ended": "Ude af kundeværdiprogrammet",
    "segment_held_since": "Segmentet gælder fra en tidligere dag",
    "segment_changed": "Segment ændret",
    "prioritized_changed": "Prioritering ændret",
}
SEGMENT_REASONS: Final = {
    "registered": "ved oprettelsen",
    "potential_assessed": "fordi potentialet blev vurderet",
    "agreement_started": "fordi en årsaftale blev indgået",
    "agreement_ended": "fordi årsaftalen ophørte",
    "value_programme_started": "fordi kunden kom med i kundeværdiprogrammet",
    "value_programme_ended": "fordi kunden gik ud af kundeværdiprogrammet",
    "policy_changed": "fordi segmenteringsreglerne blev ændret",
}
WEEKDAYS: Final = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
MONTHS: Final = (
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
)

# --------------------------------------------------------------------------- times and money


def parse_instant(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(COPENHAGEN)


def local(value: str | datetime | None) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(COPENHAGEN)
    return parse_instant(value)


def clock(value: str | datetime | None) -> str:
    moment = local(value)
    return moment.strftime("%H.%M") if moment else ""


def day(value: str | date | datetime | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = parse_instant(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(COPENHAGEN).date()
    assert value is not None
    return f"{WEEKDAYS[value.weekday()]} {value.day}. {MONTHS[value.month - 1]} {value.year}"


def when(value: str | datetime | None) -> str:
    moment = local(value)
    return f"{day(moment)} kl. {clock(moment)}" if moment else ""


def form_time(value: str | datetime | None) -> str:
    """A time as a `datetime-local` input shows it: Copenhagen wall clock to the minute."""
    moment = local(value)
    return moment.strftime("%Y-%m-%dT%H:%M") if moment else ""


def from_form_time(value: str) -> str:
    """A `datetime-local` value (Copenhagen wall clock) as the APIs take it: with its offset."""
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=COPENHAGEN)
    return moment.isoformat()


def now_local() -> datetime:
    return datetime.now(UTC).astimezone(COPENHAGEN)


def monday_of(moment: date) -> date:
    return moment - timedelta(days=moment.weekday())


def number(value: object, decimals: int = 0) -> str:
    """Danish digits: 390.000 and 0,3."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    text = f"{amount:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def money(value: object) -> str:
    return f"{number(value)} kr." if value not in (None, "") else "–"


def percent(value: object) -> str:
    try:
        return f"{number(Decimal(str(value)) * 100)} %"
    except (InvalidOperation, ValueError):
        return "–"


# --------------------------------------------------------------------------- problems

# The sales guide's refusals, by rule and the field they concern (None: any field).
RULES: Final[Mapping[tuple[str, str | None], str]] = {
    ("R1", "note"): (
        "Noten siger kun, at kunden ikke svarede. En aktivitet uden svar afsluttes ikke: "
        "flyt den til et nyt tidspunkt med årsagen »Kunden tog ikke telefonen« (R1)."
    ),
    ("R1", "reason"): "Vælg en årsag til flytningen (R1).",
    ("R1", "starts_at"): "Vælg et nyt tidspunkt i fremtiden; det nuværende er valgt (R1).",
    ("R1", None): "Kunden svarede ikke: aktiviteten flyttes i stedet for at blive afsluttet (R1).",
    ("R2", "type"): "Vælg en anden type eller kanal end den nuværende (R2).",
    ("R2", None): "Når aktivitetens form ændres, ændres dens type (R2).",
    ("R3", "channel"): "Et uanmeldt besøg foregår fysisk hos kunden (R3).",
    ("R3", "booked"): (
        "Et uanmeldt besøg er ikke aftalt med kunden. Var mødet aftalt, så registrér det "
        "som det møde, det var (R3)."
    ),
    ("R3", "type"): (
        "Et fysisk besøg, der ikke var aftalt med kunden, er et uanmeldt besøg. Vælg "
        "»Uanmeldt besøg«, eller markér at mødet var aftalt (R3)."
    ),
    ("R3", None): "Et besøg uden aftale med kunden er et uanmeldt besøg (R3).",
    ("R4", "note"): (
        "Noten skal tilføre noget: skriv hvad der kom ud af kontakten, fx et konkret tal "
        "eller mindst tre meningsfulde ord (R4)."
    ),
    (
        "R4",
        None,
    ): "Uplanlagte aktiviteter registreres bagefter med en note, der tilfører noget (R4).",
    ("R5", "subject"): "Skriv hvad aktiviteten handler om (R5).",
    ("R5", "starts_at"): "Tidspunktet skal ligge i fremtiden (R5).",
    ("R5", "ends_at"): "Sluttidspunktet skal ligge efter starttidspunktet (R5).",
    ("R5", None): "Planlægningen er ikke i orden: emne, type, kanal og tid i fremtiden (R5).",
    ("R6", "note"): "Skriv noten: den vigtige, konkrete information fra aktiviteten (R6).",
    ("R6", "next_step"): "Skriv det næste skridt (R6).",
    ("R6", "held_at"): (
        "Tidspunktet for afholdelse kan ikke ligge i fremtiden eller før aktiviteten blev "
        "planlagt (R6)."
    ),
    ("R6", None): "Aktiviteten afsluttes med note og næste skridt, når den er afholdt (R6).",
    ("R7", "next_activity.customer_id"): "Næste aktivitet planlægges på samme kunde (R7).",
    ("R7", None): "Næste aktivitet planlægges i samme gem som afslutningen (R7).",
    ("R8", None): (
        "Kunden er prioriteret og skal altid have en fremtidig aktivitet. Planlæg den næste "
        "aktivitet her (R8)."
    ),
    ("R9", None): "Et oplægsmøde afsluttes kun med det skriftlige, bindende oplæg vedhæftet (R9).",
    ("R10", "discovery_profile.potential_dkk"): "Potentialet skal være et beløb i kroner (R10).",
    ("R10", None): "Et afdækningsmøde afsluttes kun med afdækningsprofilen udfyldt (R10).",
}
CODES: Final[Mapping[str, str]] = {
    "unauthenticated": "Du er ikke logget ind, eller dit login er udløbet.",
    "forbidden": "Det har du ikke adgang til.",
    "not_found": "Findes ikke.",
    "stale_version": (
        "Nogen har ændret aktiviteten, mens du arbejdede. Se den nye udgave og prøv igen; "
        "det du skrev, står der stadig."
    ),
    "concurrent_modification": "Aktiviteten blev ændret samtidig. Prøv igen.",
    "invalid_transition": "Det kan ikke lade sig gøre i aktivitetens nuværende tilstand.",
    "service_unavailable": "Systemet er midlertidigt utilgængeligt. Prøv igen om lidt.",
    "unreachable": "Systemet svarer ikke lige nu. Prøv igen om lidt.",
    "request_too_large": "Filen er for stor.",
    "unsupported_media_type": "Filtypen kan ikke bruges.",
    "file": "Filen kan ikke læses som en CSV-fil med de rigtige kolonner.",
    "encoding": "Filen skal være gemt som UTF-8.",
    "time_out_of_range": "Tidspunktet ligger uden for det mulige (år 2000 til ti år frem).",
    "money_as_string": "Beløbet skal skrives som et tal i kroner.",
    "customer_exists": "Kunden findes allerede.",
    "unchanged": "Intet er ændret.",
    "internal_error": "Der skete en fejl i systemet. Den er logget.",
}
VALIDATION: Final[Mapping[str, str]] = {
    "missing": "Skal udfyldes.",
    "none_required": "Skal udfyldes.",
    "string_type": "Skal udfyldes.",
    "datetime_type": "Angiv dato og klokkeslæt.",
    "string_too_short": "Skal udfyldes.",
    "string_too_long": "Teksten er for lang.",
    "string_pattern_mismatch": "Indeholder tegn, der ikke kan bruges.",
    "datetime_from_date_parsing": "Angiv dato og klokkeslæt.",
    "datetime_parsing": "Angiv dato og klokkeslæt.",
    "enum": "Vælg en af mulighederne.",
    "decimal_parsing": "Skriv et beløb i kroner.",
    "value_error": "Værdien kan ikke bruges.",
}
FALLBACK: Final = "Det kan ikke lade sig gøre"


def rule_message(code: str, field: str | None) -> str:
    if field is not None:
        found = RULES.get((code, field))
        if found:
            return found
    return RULES.get((code, None), f"{FALLBACK} ({code}).")


def problem_message(problem: Mapping[str, Any], status: int) -> str:
    code = str(problem.get("code") or "")
    if problem.get("rule") or code in {f"R{n}" for n in range(1, 11)}:
        return rule_message(str(problem.get("rule") or code), _field(problem.get("field")))
    if code in CODES:
        return CODES[code]
    if status == 422:
        return "Noget i formularen skal rettes."
    return f"{FALLBACK} ({code or status})."


def field_errors(problem: Mapping[str, Any], status: int) -> tuple[dict[str, str], str | None]:
    """A problem as messages by form field (the API's field paths, without `body.`), and
    the message that belongs to no field shown (None when every message found its field)."""
    errors: dict[str, str] = {}
    code = str(problem.get("code") or "")
    field = _field(problem.get("field"))
    rule = str(problem.get("rule") or "")
    if rule or (code.startswith("R") and code[1:].isdigit()):
        message = rule_message(rule or code, field)
        if rule == "R10" or code == "R10":
            for missing in problem.get("missing") or []:
                errors[f"discovery_profile.{missing}"] = "Skal udfyldes (R10)."
        errors[field or "_"] = message
    elif field:
        errors[field] = problem_message(problem, status)
    for item in _listed(problem.get("errors")):
        name = _field(item.get("field"))
        if name:
            errors.setdefault(name, _validation(item))
    general = errors.pop("_", None)
    if not errors and general is None:
        general = problem_message(problem, status)
    return errors, general


def _validation(item: Mapping[str, Any]) -> str:
    kind = str(item.get("type") or "")
    if kind in VALIDATION:
        return VALIDATION[kind]
    if kind in CODES:
        return CODES[kind]
    if kind.startswith("R") and kind[1:].isdigit():
        return rule_message(kind, _field(item.get("field")))
    return "Værdien kan ikke bruges."


def _listed(value: object) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def _field(value: object) -> str | None:
    if not value or not isinstance(value, str):
        return None
    for prefix in ("body.", "query.", "path.", "header."):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


# --------------------------------------------------------------------------- import rows

# The imports' rejection reasons are English sentences, and what is stable in them is how
# each begins: the CSV column it concerns (the documented header) and what is wrong with it.
# Those are said in Danish; any other reason is shown as the API worded it, marked as English.
_COLUMN: Final = r"(?P<col>[a-z_]+)"
_VALUE: Final = r"(?P<value>'.*'|\".*\")"


@dataclass(frozen=True)
class Reason:
    text: str
    lang: str = "da"  # "en": the API's own words, for no known pattern matched


def _col(found: re.Match[str], name: str = "col") -> str:
    return f"»{found.group(name)}«"


_REASONS: Final[list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]] = [
    (
        re.compile(r"expected (?P<want>\d+) columns, found (?P<got>\d+)"),
        lambda m: f"Rækken har {m['got']} felter, men overskriften har {m['want']} kolonner.",
    ),
    (
        re.compile(rf"{_COLUMN} appears twice in the file \(first on line (?P<line>\d+)\)"),
        lambda m: f"{_col(m)} står to gange i filen (første gang på linje {m['line']}).",
    ),
    (
        re.compile(rf"{_COLUMN} is missing \(an agreement needs both days\)"),
        lambda m: f"{_col(m)} mangler: en årsaftale skal have både første og sidste dag.",
    ),
    (
        re.compile(rf"{_COLUMN} is missing \(a membership needs its first day\)"),
        lambda m: f"{_col(m)} mangler: et medlemskab skal have sin første dag.",
    ),
    (
        re.compile(rf"{_COLUMN} is missing or not an e-mail address"),
        lambda m: f"{_col(m)} mangler eller er ikke en e-mailadresse.",
    ),
    (
        re.compile(rf"{_COLUMN} is missing or not an id\b.*"),
        lambda m: (
            f"{_col(m)} mangler eller er ikke et gyldigt id (bogstaver, tal og . _ ~ : @ + -)."
        ),
    ),
    (
        re.compile(
            rf"{_COLUMN} is missing, longer than (?P<n>\d+) characters or holds control characters"
        ),
        lambda m: f"{_col(m)} mangler, er længere end {m['n']} tegn eller indeholder kontroltegn.",
    ),
    (
        re.compile(rf"{_COLUMN} is longer than (?P<n>\d+) characters or holds control characters"),
        lambda m: f"{_col(m)} er længere end {m['n']} tegn eller indeholder kontroltegn.",
    ),
    (re.compile(rf"{_COLUMN} is missing"), lambda m: f"{_col(m)} mangler."),
    (
        re.compile(rf"{_COLUMN} {_VALUE} is not a number such as .*"),
        lambda m: f"{_col(m)}: {m['value']} er ikke et beløb, fx 390000.00.",
    ),
    (
        re.compile(rf"{_COLUMN} {_VALUE} is not a date \(YYYY-MM-DD\).*"),
        lambda m: (
            f"{_col(m)}: {m['value']} er ikke en dato (ÅÅÅÅ-MM-DD) fra år 2000 til ti år frem."
        ),
    ),
    (
        re.compile(rf"{_COLUMN} {_VALUE} is not a day \(.*\) or a time with an offset.*"),
        lambda m: (
            f"{_col(m)}: {m['value']} er hverken en dag (2026-03-02) eller et tidspunkt "
            "med tidszone (2026-03-02T10:00+01:00)."
        ),
    ),
    (
        re.compile(rf"{_COLUMN} {_VALUE} is none of (?P<allowed>.*)"),
        lambda m: f"{_col(m)}: {m['value']} er ikke en af {m['allowed']}.",
    ),
    (
        re.compile(rf"{_COLUMN} must be between 2000-01-01 and now\b.*"),
        lambda m: (
            f"{_col(m)} skal ligge mellem 1. januar 2000 og nu: en import bringer "
            "det, der er holdt."
        ),
    ),
    (
        re.compile(rf"{_COLUMN} is after (?P<other>[a-z_]+)"),
        lambda m: f"{_col(m)} ligger efter {_col(m, 'other')}.",
    ),
]


def import_reason(reason: str, line_of: Callable[[int], int] = lambda n: n) -> Reason:
    """One rejection reason of an import in Danish, when it is one of the known kinds.

    `line_of` maps a line number the API names (its slice's) to the uploaded file's.
    """
    for pattern, say in _REASONS:
        found = pattern.fullmatch(reason.strip())
        if found:
            if "line" in pattern.groupindex:
                said = say(found)
                line = found["line"]
                return Reason(said.replace(f"linje {line})", f"linje {line_of(int(line))})"))
            return Reason(say(found))
    return Reason(reason, "en")
