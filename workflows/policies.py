"""How long each activity may take and how it is retried: the only copy, for every workflow.

These values are part of the commands a workflow writes into its history (a retry policy, a
timeout): recorded histories replay against them (tests/workflows/test_replay.py). Change one for
attempts in flight only behind ``workflow.patched``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.marsa_maroc import NON_RETRYABLE as MARSA_NON_RETRYABLE

# The ledger: local writes, quick; retried patiently (a locked SQLite file, a PostgreSQL failover).
LEDGER_TIMEOUT = timedelta(seconds=30)
LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["BusinessRefusal"],
)

# The receipt issued after a settlement (rule ``receipt-after-settlement``): retried like the
# ledger, but given up after a day: the money is in whatever happens to its receipt.
RECEIPT_GIVE_UP = timedelta(days=1)

# Partners and SMTP when nobody waits on the answer (the confirmation e-mail, the emitters' notices,
# cancelling an Amanpay order): they may be down for a while, so back off up to a minute, for a day.
PARTNER_TIMEOUT = timedelta(seconds=30)
PARTNER_GIVE_UP = timedelta(days=1)
PARTNER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["BusinessRefusal"],
)

# The CMI card form: a local activity, pure computation with the store key.
CARD_FORM_TIMEOUT = timedelta(seconds=10)

# After answering CMI's callback ``ACTION=POSTAUTH``, the card channel gives CMI this long to read
# the answer before capturing an authorisation it still shows alone (since ``cmi-capture-watch``,
# CAPTURE_WATCH_SPAN and CAPTURE_LATER_LOOKS below; CAPTURE_LOOKS and CAPTURE_PROMPT_LOOKS are the
# looks of the attempts begun on older rules). Before ``cmi-capture-early-look`` it waited the
# whole grace, then asked (ORDERHISTORY) what CMI holds; its query and its capture (PostAuth) then
# use PARTNER_TIMEOUT and PARTNER_RETRY without a give-up: neither settling nor releasing is right
# until CMI has said whether it holds the money.
CAPTURE_FIRST_LOOK = timedelta(seconds=2)
# Since ``cmi-capture-early-look`` the same grace is split into looks: CMI captures as soon as it has
# read our answer (the sandbox on recording the callback's reply), so the first look, a moment after
# the answer left, nearly always finds the capture and the attempt settles without waiting the whole
# grace. While CMI shows an authorisation only, the attempt looks again, at growing intervals, and
# captures through the API (PostAuth) only after the last: CMI still gets at least CAPTURE_FIRST_LOOK
# to read our answer (the looks themselves take time too), so our PostAuth never races its capture.
CAPTURE_LOOKS = tuple(timedelta(milliseconds=ms) for ms in (150, 250, 500, 1100))
assert sum(CAPTURE_LOOKS, timedelta()) == CAPTURE_FIRST_LOOK, "the looks span CMI's whole grace"
# Since ``cmi-capture-prompt-look``, when CMI's callback reached the workflow within PROMPT_CALLBACK
# of reaching the portal (nothing queueing), the first look comes 50 ms after our answer left (the
# least a timer waits on our servers: TIMER_TIME_SHIFT): CMI has read the answer by then (the sandbox
# records the capture a few milliseconds after it), and the payer sees "Réussi" sooner
# (bench.e2e_card at concurrency 1: callback -> succeeded p50 256 -> 129 ms). Under load our answer
# reaches CMI later too, a look at 50 ms would find an authorisation only and cost one look more
# (3 to 8 % more CPU per payment at 64 payers): a callback that waited takes CAPTURE_LOOKS. A first look too
# early costs one look and the time it takes: the second comes about when the first used to, and
# either way the looks span CMI's whole grace before any PostAuth.
PROMPT_CALLBACK = timedelta(milliseconds=100)
CAPTURE_PROMPT_LOOKS = tuple(timedelta(milliseconds=ms) for ms in (50, 100, 250, 500, 1100))
assert sum(CAPTURE_PROMPT_LOOKS, timedelta()) == CAPTURE_FIRST_LOOK, "the looks span CMI's whole grace"
assert sum(CAPTURE_PROMPT_LOOKS[:2], timedelta()) == CAPTURE_LOOKS[0], "a missed first look costs one look"

# Since ``cmi-capture-watch``, one activity (``watch_card_capture``) looks at CMI's order at once and
# again milliseconds apart (activities/cmi_card.py WATCH_PAUSES) for CAPTURE_WATCH_SPAN after our
# answer: alone, CMI has read it within a few milliseconds, and the payer sees "Réussi" without a
# timer's wait (bench.e2e_card at concurrency 1: callback -> succeeded p50 150 -> 82 ms). While CMI
# still shows an authorisation only, the workflow looks again at CAPTURE_LATER_LOOKS after the
# answer, each a timer and a ``check_card_capture``: a durable timer holds no activity slot, where a
# watch over the whole grace would hold one for 2 s when CMI reads answers late (under load, or
# never). The last look is at CAPTURE_FIRST_LOOK, so the PostAuth still waits CMI's whole grace.
CAPTURE_WATCH_SPAN = timedelta(milliseconds=400)
CAPTURE_LATER_LOOKS = (timedelta(milliseconds=900), CAPTURE_FIRST_LOOK)
assert CAPTURE_WATCH_SPAN < CAPTURE_LATER_LOOKS[0] and CAPTURE_LATER_LOOKS[-1] == CAPTURE_FIRST_LOOK

# CMI Fatourati's token, while the payer waits for the page (PARTNER_TIMEOUT and PARTNER_RETRY per call).
TOKEN_GIVE_UP = timedelta(minutes=3)
# The channels' e-mails (Fatourati reference and reminder, finance's alert for an unconfirmed cheque
# or transfer) and cancelling a Fatourati token at its deadline (PARTNER_TIMEOUT and PARTNER_RETRY).
MAIL_GIVE_UP = timedelta(hours=6)

# Amanpay and PayDirect while the payer waits on the API call: fail fast rather than hang.
CALL_TIMEOUT = timedelta(seconds=20)
CALL_GIVE_UP = timedelta(seconds=60)
CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=["BusinessRefusal"],
)
# The cash payment code e-mail (Temporal's default retry policy).
CODE_MAIL_TIMEOUT = timedelta(seconds=30)
CODE_MAIL_GIVE_UP = timedelta(hours=1)

# MARSA MAROC's invoice pages: retried with backoff on timeouts and 5xx, heartbeating while it is slow;
# a 401, 404 or malformed answer is final.
INVOICE_PAGE_TIMEOUT = timedelta(seconds=60)
INVOICE_PAGE_HEARTBEAT = timedelta(seconds=10)
INVOICE_PAGE_GIVE_UP = timedelta(minutes=10)
INVOICE_PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=MARSA_NON_RETRYABLE,
)
INVOICE_UPSERT_TIMEOUT = timedelta(seconds=30)
INVOICE_UPSERT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=10,
)

# Reconciliation: one check (a ledger read, a partner look-up, an Update) at a time, a few tries;
# what still fails is counted in the run and found again by the next run.
RECONCILE_TIMEOUT = timedelta(seconds=60)
RECONCILE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)
