"""Seeded synthetic helpdesk conversations for the simulator.

Why a generator and not a fixture file: tests, the demo and the benchmarks need anything from ten
to a million tickets with a *known* answer (stage, themes, language) so that accuracy can be
measured, and the text has to carry the mess real customers produce (quoted reply chains,
signatures, PII, HTML, emoji, typos, other languages) so that the cleaning code is exercised.

Everything here is a pure function of a ``random.Random`` passed in, so the simulator can render a
comment's text lazily, on demand, from a per-comment seed: the state only keeps a few integers per
comment and the text of a 100,000-ticket account costs no memory until it is served.

All text is written for this project (a fictional B2C shop + SaaS company, "Acme").
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

STAGES: tuple[str, ...] = (
    "awareness",
    "exploration",
    "consideration",
    "purchase",
    "delivery",
    "support",
)

THEMES: tuple[str, ...] = (
    "delays_and_waiting",
    "refunds_and_returns",
    "fees_and_billing_errors",
    "payment_failures",
    "checkout_friction",
    "account_access",
    "missing_or_confusing_information",
    "product_defects",
    "delivery_problems",
    "cancellation",
    "security_and_fraud",
    "agent_service_quality",
    "usability_and_navigation",
    "app_and_site_errors",
)

LANGUAGES: tuple[str, ...] = ("en", "es", "de", "fr")

# Share of tickets per stage (journey order) — support-heavy like a real helpdesk.
STAGE_WEIGHTS: tuple[float, ...] = (0.05, 0.10, 0.12, 0.18, 0.22, 0.33)

# Which themes plausibly occur at which stage, with relative weights.
STAGE_THEMES: dict[str, dict[str, float]] = {
    "awareness": {
        "missing_or_confusing_information": 5,
        "usability_and_navigation": 2,
        "app_and_site_errors": 1,
        "security_and_fraud": 1,
    },
    "exploration": {
        "missing_or_confusing_information": 4,
        "usability_and_navigation": 3,
        "app_and_site_errors": 2,
        "account_access": 1,
    },
    "consideration": {
        "missing_or_confusing_information": 4,
        "fees_and_billing_errors": 3,
        "delays_and_waiting": 1,
        "agent_service_quality": 1,
        "usability_and_navigation": 1,
    },
    "purchase": {
        "payment_failures": 5,
        "checkout_friction": 5,
        "fees_and_billing_errors": 2,
        "app_and_site_errors": 2,
        "security_and_fraud": 1,
    },
    "delivery": {
        "delays_and_waiting": 5,
        "delivery_problems": 5,
        "product_defects": 2,
        "agent_service_quality": 1,
        "missing_or_confusing_information": 1,
    },
    "support": {
        "refunds_and_returns": 5,
        "product_defects": 4,
        "account_access": 4,
        "cancellation": 3,
        "fees_and_billing_errors": 3,
        "agent_service_quality": 2,
        "app_and_site_errors": 2,
        "security_and_fraud": 2,
        "delays_and_waiting": 2,
        "usability_and_navigation": 1,
    },
}


@dataclass(frozen=True, slots=True)
class Truth:
    """The hidden answer for one ticket: never served by the API, used to score the miner.

    ``stage`` is None (and ``themes`` empty) for tickets without customer text (outbound or
    agent-created), because there is nothing for a miner to classify.
    """

    stage: str | None
    themes: tuple[str, ...]
    language: str


# --------------------------------------------------------------------------------------------
# Slot values: filled lazily so a template pays only for the slots it uses.

_PRODUCTS = (
    "wireless headphones",
    "standing desk",
    "coffee grinder",
    "smart thermostat",
    "backpack",
    "running shoes",
    "blender",
    "desk lamp",
    "air purifier",
    "robot vacuum",
    "yoga mat",
    "espresso machine",
    "phone case",
    "winter jacket",
    "kettle",
    "gaming chair",
)
_PLANS = ("Acme Plus", "Acme Cloud Pro", "Business plan", "Family plan", "Premium membership")
_CARRIERS = ("UPS", "DHL", "FedEx", "the courier", "Royal Mail", "USPS", "DPD")
_APPS = ("the iOS app", "the Android app", "the website", "your app", "the mobile site")
_WHEN = (
    "yesterday",
    "last week",
    "on Monday",
    "two days ago",
    "last Friday",
    "this morning",
    "on the 3rd",
    "about a week ago",
    "over the weekend",
)
_FIRST = (
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jamal",
    "Kate",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quentin",
    "Rosa",
    "Sam",
    "Tariq",
    "Uma",
    "Victor",
    "Wendy",
    "Xavier",
    "Yuki",
    "Zoe",
    "Lucas",
    "Mia",
    "Omar",
    "Sofia",
    "Chen",
    "Aisha",
    "Pablo",
    "Greta",
    "Jonas",
    "Elena",
    "Marco",
    "Chloe",
    "Ravi",
    "Hannah",
)
_LAST = (
    "Smith",
    "Garcia",
    "Müller",
    "Okafor",
    "Nguyen",
    "Rossi",
    "Kowalski",
    "Dubois",
    "Patel",
    "Johnson",
    "Silva",
    "Tanaka",
    "Andersen",
    "Brown",
    "Khan",
    "Lopez",
    "Schmidt",
    "Moreau",
    "Novak",
    "Wilson",
    "Costa",
    "Fischer",
    "Hughes",
    "Ivanova",
    "Larsen",
    "O'Brien",
)


def person_name(rng: random.Random) -> tuple[str, str]:
    """A (first, last) name pair."""
    return rng.choice(_FIRST), rng.choice(_LAST)


def order_number(rng: random.Random) -> str:
    """An order reference in one of the shapes customers actually type."""
    n = rng.randrange(100000, 999999)
    return rng.choice((f"#{n}", f"A-{n}", f"#ACM-{n}", f"{n}"))


def phone_number(rng: random.Random) -> str:
    """A fictional phone number (555 range / reserved drama numbers), in mixed formats."""
    a, b = rng.randrange(100, 999), rng.randrange(1000, 9999)
    return rng.choice(
        (
            f"+1 415 555 {b:04d}",
            f"(212) 555-{b:04d}",
            f"+44 7700 900{a:03d}",
            f"+49 30 {a}{b}",
            f"555-{a:03d}-{b:04d}",
        )
    )


def luhn_card(rng: random.Random) -> str:
    """A Luhn-valid card number on a test BIN, grouped as people type it."""
    prefix = rng.choice(("411111", "555555", "401288", "378282"))
    body = prefix + "".join(rng.choice(string.digits) for _ in range(15 - len(prefix)))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    full = body + str((10 - total % 10) % 10)
    return " ".join(full[i : i + 4] for i in range(0, 16, 4))


_IBANS = (
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606",
    "ES91 2100 0418 4502 0005 1332",
    "NL91ABNA0417164300",
)


class _Slots(dict[str, str]):
    """``str.format_map`` mapping that draws a slot value the first time it is used."""

    def __init__(self, rng: random.Random, **fixed: str) -> None:
        super().__init__(fixed)
        self._rng = rng

    def __missing__(self, key: str) -> str:
        rng = self._rng
        value: str
        if key == "product":
            value = rng.choice(_PRODUCTS)
        elif key == "plan":
            value = rng.choice(_PLANS)
        elif key == "order":
            value = order_number(rng)
        elif key == "days":
            value = str(rng.randrange(2, 15))
        elif key == "amount":
            cents = rng.randrange(100)
            value = rng.choice(("$", "€", "£")) + f"{rng.randrange(5, 400)}.{cents:02d}"
        elif key == "carrier":
            value = rng.choice(_CARRIERS)
        elif key == "app":
            value = rng.choice(_APPS)
        elif key == "when":
            value = rng.choice(_WHEN)
        elif key == "code":
            value = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
        elif key == "agent":
            value = rng.choice(_FIRST)
        else:  # pragma: no cover - a template typo should fail loudly in tests
            raise KeyError(key)
        self[key] = value
        return value


def fill(rng: random.Random, template: str, **fixed: str) -> str:
    """Fill ``{slot}`` placeholders in a template."""
    return template.format_map(_Slots(rng, **fixed))


# --------------------------------------------------------------------------------------------
# English phrase banks. Stage sentences say where in the journey the customer is; theme
# sentences say what hurts. A message combines them, so both labels are recoverable but the
# surface text varies a lot.

STAGE_PHRASES: dict[str, tuple[str, ...]] = {
    "awareness": (
        "I saw your ad on Instagram and wanted to know what Acme actually sells.",
        "A friend recommended Acme to me but I had never heard of you before.",
        "Is Acme the same company that used to run the {product} shop downtown?",
        "I just came across your site while searching for a {product}.",
        "Do you ship to Canada at all? I'm only now finding out about you.",
        "Saw a video review mentioning Acme, are you a legit store?",
        "What exactly is {plan}, I keep seeing it mentioned in your newsletter.",
        "First time hearing about Acme, do you have a physical store anywhere?",
    ),
    "exploration": (
        "I'm comparing a few options and looking at the {product} on your site.",
        "Could you tell me the dimensions of the {product}? I couldn't find them.",
        "I'm browsing your catalogue and wondered if the {product} comes in other colours.",
        "Does {plan} include the features listed on the pricing page or only some of them?",
        "I'd like to understand how the {product} differs from the cheaper model.",
        "Is there a demo or trial of {plan} I could look at before deciding anything?",
        "Which {product} would you recommend for a small apartment?",
        "Trying to work out whether your {product} is compatible with what I already own.",
    ),
    "consideration": (
        "I'm about to decide between the {product} and a competitor's, can you help?",
        "Before I commit to {plan}, can you confirm the price after the first year?",
        "If I buy the {product} now, is there a chance it goes on sale next week?",
        "I'm thinking of upgrading to {plan} but want to know the cancellation terms first.",
        "Is there a discount if I order two of the {product}? Deciding today.",
        "What warranty comes with the {product}? That will decide it for me.",
        "Can I get a quote for 10 licences of {plan} before we sign off internally?",
        "I had the {product} in my basket for a week, still weighing it up.",
    ),
    "purchase": (
        "I'm trying to place an order for the {product} right now.",
        "I just tried to check out with the {product} in my cart.",
        "I tried to subscribe to {plan} this morning.",
        "I placed order {order} a few minutes ago.",
        "I was in the middle of paying for my order when something went wrong.",
        "Trying to buy the {product} as a gift before the weekend.",
        "I went to upgrade to {plan} and pay with my card.",
        "At the payment step for order {order} and stuck.",
    ),
    "delivery": (
        "I ordered a {product} {when} (order {order}).",
        "My order {order} was supposed to arrive {when}.",
        "The tracking for {order} hasn't updated in {days} days.",
        "The {carrier} driver marked my parcel as delivered but I have nothing.",
        "My {product} arrived today, order {order}.",
        "I'm waiting on the delivery of order {order}.",
        "The {product} I ordered {when} showed up this afternoon.",
        "{carrier} says my package is with you again, order {order}.",
    ),
    "support": (
        "I've been using my {product} for a couple of months now.",
        "I have a question about my {plan} subscription.",
        "I bought the {product} from you {when}.",
        "I'm a long-time {plan} customer.",
        "This is about my account and the {plan} I pay for.",
        "I got the {product} a few weeks ago (order {order}).",
        "Following up on my {plan} account.",
        "I need help with something on my account.",
    ),
}

THEME_PHRASES: dict[str, tuple[str, ...]] = {
    "delays_and_waiting": (
        "It's been {days} days and I'm still waiting.",
        "Nobody has got back to me for over a week, this is taking forever.",
        "Why does this take so long? I was told 48 hours, it's now day {days}.",
        "Still nothing. How much longer do I have to wait?",
        "I've been on hold for 45 minutes twice now.",
        "Your site said 2-3 days, it has been {days}.",
        "Still waiting, it keeps getting pushed back.",
        "I was promised an update {when} and heard nothing since.",
    ),
    "refunds_and_returns": (
        "I want to return it and get my money back.",
        "I sent the return back {when} and still haven't seen the refund.",
        "How do I return this? The return label link doesn't do anything.",
        "You refunded {amount} but I paid a lot more than that.",
        "I'd like a refund please, it's not what I expected.",
        "The refund was approved {days} days ago but nothing on my statement.",
        "Can I exchange it for a different size instead of a refund?",
        "Your returns policy says 30 days, I'm on day 20 and the form refuses me.",
    ),
    "fees_and_billing_errors": (
        "I was charged twice, {amount} each time.",
        "There's a fee of {amount} on my invoice I never agreed to.",
        "My bill went up to {amount} without any warning.",
        "You charged me for {plan} after I downgraded.",
        "Why is there a service charge on top of the price shown?",
        "The invoice total doesn't match what I saw at checkout.",
        "I'm being billed monthly even though I paid for the year.",
        "There's a {amount} charge from Acme on my statement I don't recognise.",
    ),
    "payment_failures": (
        "My card keeps getting declined even though there's money on it.",
        "The payment failed three times with error {code}.",
        "PayPal shows the payment as taken but your site says it failed.",
        "Apple Pay just spins and then says the transaction could not be completed.",
        "My bank says they never even saw the payment attempt.",
        "The payment page says 'something went wrong' every single time.",
        "It says my card was declined but my bank shows a pending charge of {amount}.",
        "I can't pay, the 3D Secure code never arrives.",
    ),
    "checkout_friction": (
        "The checkout keeps asking me to log in again.",
        "The promo code {code} says it's invalid at checkout.",
        "The basket empties itself whenever I go to the delivery step.",
        "Why do I have to create an account just to buy one thing?",
        "The checkout won't accept my postcode.",
        "I can't choose a delivery slot, the button is greyed out.",
        "It's way too many steps to pay, I gave up twice.",
        "The address form keeps resetting when I hit continue.",
    ),
    "account_access": (
        "I can't log in to my account anymore.",
        "The password reset email never arrives.",
        "It says my account is locked after too many attempts.",
        "The 2FA code doesn't work and I changed phones.",
        "I'm stuck in a login loop, it sends me back to the sign-in page.",
        "I no longer have access to the email on my account.",
        "My account says it doesn't exist but I've ordered before.",
        "The verification code expires before it even reaches me.",
    ),
    "missing_or_confusing_information": (
        "The product page doesn't say whether batteries are included.",
        "Your FAQ contradicts what the product page says.",
        "I can't find anywhere what the warranty actually covers.",
        "The instructions are really unclear, there are no real steps.",
        "Nowhere does it say how much shipping is.",
        "The size guide is confusing, which size should I pick?",
        "Your terms mention an 'activation window' but nothing explains it.",
        "I'm confused about what is included in {plan}.",
    ),
    "product_defects": (
        "It stopped working after {days} days.",
        "The {product} arrived with a crack down the side.",
        "It makes a loud grinding noise when I switch it on.",
        "The battery dies after less than an hour.",
        "One of the parts was broken in the box.",
        "The {product} overheats and then shuts off.",
        "The stitching came apart after one wash.",
        "It's faulty, the screen flickers constantly.",
    ),
    "delivery_problems": (
        "The parcel was left out in the rain and everything is soaked.",
        "I received someone else's order.",
        "Half my order is missing, only one box came.",
        "{carrier} says it was delivered but it's not here.",
        "The box was completely crushed when it arrived.",
        "It went to my old address even though I updated it.",
        "The driver never rang the bell and just left a card.",
        "The tracking number you gave me doesn't exist on the {carrier} site.",
    ),
    "cancellation": (
        "I want to cancel my subscription.",
        "Please cancel order {order}, I don't need it anymore.",
        "How do I cancel {plan}? I can't find the option anywhere.",
        "I cancelled {when} but I've been charged again.",
        "I'd like to close my account completely.",
        "Cancel my membership please, effective immediately.",
        "I tried to cancel but the page just loops back to the offers.",
        "Can I still cancel the order before it ships?",
    ),
    "security_and_fraud": (
        "I got an email asking for my password that looked like it came from you.",
        "Someone placed an order on my account that I didn't make.",
        "There's a login from another country on my account.",
        "I think my card was used fraudulently on your site.",
        "I received a text with a link saying my parcel was held, is that really you?",
        "My saved address was changed and it wasn't me.",
        "Someone changed my account email, I think I've been hacked.",
        "Is this {amount} charge a scam? I never shop at night.",
    ),
    "agent_service_quality": (
        "The last agent I spoke to was really rude.",
        "I've explained this three times to three different people.",
        "Your agent closed my ticket without fixing anything.",
        "I was promised a call back that never happened.",
        "The chat agent just pasted a generic answer and left.",
        "Nobody seems to actually read my messages.",
        "{agent} on the phone hung up on me.",
        "The support I've had so far has been honestly terrible.",
    ),
    "usability_and_navigation": (
        "I can't find where to change my delivery address in the settings.",
        "The menu is really confusing, where is the order history?",
        "It's impossible to find the invoices section.",
        "The search on your site never finds what I type.",
        "The new layout is hard to use, everything moved.",
        "Where do I update my payment details? I've clicked everywhere.",
        "The filters reset every time I go back a page.",
        "The text is tiny on mobile and the buttons overlap.",
    ),
    "app_and_site_errors": (
        "The app crashes as soon as I open it.",
        "I keep getting a 500 error on your site.",
        "The page just shows a blank white screen.",
        "{app} freezes on the loading spinner.",
        "I get 'Oops, something went wrong' on every page.",
        "Since the last update {app} won't start.",
        "The site times out whenever I open my orders.",
        "Error {code} pops up and the page reloads.",
    ),
}

ASK_PHRASES: tuple[str, ...] = (
    "Can you help?",
    "Please advise.",
    "What are my options?",
    "Could someone look into this please?",
    "Can you let me know what to do next?",
    "I'd appreciate a quick reply.",
    "Please sort this out.",
    "What should I do?",
    "Any update would be great.",
    "",
    "",
)

GREETINGS: tuple[str, ...] = (
    "Hi,",
    "Hello,",
    "Hi there,",
    "Hey,",
    "Good morning,",
    "Hello Acme team,",
    "Dear Acme,",
    "Hi support,",
    "",
    "",
    "",
    "",
)

CLOSERS: tuple[str, ...] = (
    "Thanks",
    "Thank you",
    "Thanks in advance",
    "Regards",
    "Best",
    "Cheers",
    "Many thanks",
    "Kind regards",
    "",
    "",
    "",
)

EMOJI: tuple[str, ...] = ("🙏", "😡", "😕", "🙂", "😤", "👍", "😭", "🤔")

NEUTRAL_PHRASES: tuple[str, ...] = (
    "Just wanted to ask a quick question.",
    "Hope you can help me with this.",
    "Nothing urgent, just curious.",
    "Quick one for you.",
)


class ForeignBank(TypedDict):
    """One language's phrases: greetings, closers, a sentence per stage and per theme."""

    greet: tuple[str, ...]
    close: tuple[str, ...]
    stage: dict[str, str]
    theme: dict[str, str]


# Non-English banks: one sentence per stage and per theme is enough for a 3 % minority, and keeps
# the labels recoverable for a multilingual miner.
FOREIGN: dict[str, ForeignBank] = {
    "es": {
        "greet": ("Hola,", "Buenos días,", "Hola equipo de Acme,"),
        "close": ("Gracias", "Saludos", "Un saludo"),
        "stage": {
            "awareness": "Acabo de conocer Acme por un anuncio, ¿qué vendéis exactamente?",
            "exploration": "Estoy mirando el {product} en vuestra web y tengo dudas.",
            "consideration": "Pienso contratar {plan}, pero antes quiero saber el precio.",
            "purchase": "Estoy intentando pagar mi pedido ahora mismo.",
            "delivery": "Mi pedido {order} tenía que llegar {when_es}.",
            "support": "Tengo un problema con mi cuenta y mi suscripción.",
        },
        "theme": {
            "delays_and_waiting": "Llevo {days} días esperando y nadie me responde.",
            "refunds_and_returns": "Quiero devolverlo y que me devuelvan el dinero.",
            "fees_and_billing_errors": "Me habéis cobrado dos veces {amount}.",
            "payment_failures": "La tarjeta es rechazada una y otra vez.",
            "checkout_friction": "El carrito se vacía cada vez que voy a pagar.",
            "account_access": "No puedo iniciar sesión en mi cuenta.",
            "missing_or_confusing_information": "La información de la web no está clara.",
            "product_defects": "El {product} dejó de funcionar a los pocos días.",
            "delivery_problems": "El paquete llegó roto y falta la mitad.",
            "cancellation": "Quiero cancelar mi suscripción.",
            "security_and_fraud": "Alguien ha hecho un pedido con mi cuenta sin permiso.",
            "agent_service_quality": "El agente con el que hablé fue muy maleducado.",
            "usability_and_navigation": "No encuentro dónde cambiar mi dirección.",
            "app_and_site_errors": "La aplicación se cierra sola al abrirla.",
        },
    },
    "de": {
        "greet": ("Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,"),
        "close": ("Danke", "Viele Grüße", "Mit freundlichen Grüßen"),
        "stage": {
            "awareness": "Ich habe gerade zum ersten Mal von Acme gehört, was bieten Sie an?",
            "exploration": "Ich schaue mir gerade den {product} auf Ihrer Seite an.",
            "consideration": "Ich überlege, {plan} abzuschließen, was kostet das nach einem Jahr?",
            "purchase": "Ich versuche gerade, meine Bestellung zu bezahlen.",
            "delivery": "Meine Bestellung {order} sollte {when_de} ankommen.",
            "support": "Ich habe eine Frage zu meinem Konto und meinem Abo.",
        },
        "theme": {
            "delays_and_waiting": "Ich warte jetzt schon seit {days} Tagen.",
            "refunds_and_returns": "Ich möchte es zurückschicken und mein Geld zurück.",
            "fees_and_billing_errors": "Mir wurden {amount} doppelt abgebucht.",
            "payment_failures": "Meine Karte wird ständig abgelehnt.",
            "checkout_friction": "Der Warenkorb leert sich immer beim Bezahlen.",
            "account_access": "Ich kann mich nicht mehr in mein Konto einloggen.",
            "missing_or_confusing_information": "Die Angaben auf der Seite sind sehr verwirrend.",
            "product_defects": "Das Gerät ist nach ein paar Tagen kaputt gegangen.",
            "delivery_problems": "Das Paket kam beschädigt an und es fehlt etwas.",
            "cancellation": "Ich möchte mein Abo kündigen.",
            "security_and_fraud": "Jemand hat ohne mein Wissen über mein Konto bestellt.",
            "agent_service_quality": "Der Mitarbeiter am Telefon war sehr unfreundlich.",
            "usability_and_navigation": "Ich finde nicht, wo man die Adresse ändert.",
            "app_and_site_errors": "Die App stürzt beim Öffnen sofort ab.",
        },
    },
    "fr": {
        "greet": ("Bonjour,", "Bonsoir,", "Madame, Monsieur,"),
        "close": ("Merci", "Cordialement", "Bien à vous"),
        "stage": {
            "awareness": "Je viens de découvrir Acme, que vendez-vous exactement ?",
            "exploration": "Je regarde le {product} sur votre site et j'ai des questions.",
            "consideration": "J'hésite à prendre {plan}, quel est le prix après un an ?",
            "purchase": "J'essaie de payer ma commande en ce moment.",
            "delivery": "Ma commande {order} devait arriver {when_fr}.",
            "support": "J'ai une question sur mon compte et mon abonnement.",
        },
        "theme": {
            "delays_and_waiting": "Cela fait {days} jours que j'attends.",
            "refunds_and_returns": "Je voudrais le retourner et être remboursé.",
            "fees_and_billing_errors": "On m'a débité {amount} deux fois.",
            "payment_failures": "Ma carte est refusée à chaque fois.",
            "checkout_friction": "Le panier se vide quand je passe au paiement.",
            "account_access": "Je n'arrive plus à me connecter à mon compte.",
            "missing_or_confusing_information": "Les informations sur le site ne sont pas claires.",
            "product_defects": "L'appareil ne fonctionne plus après quelques jours.",
            "delivery_problems": "Le colis est arrivé abîmé et incomplet.",
            "cancellation": "Je souhaite résilier mon abonnement.",
            "security_and_fraud": "Quelqu'un a passé une commande avec mon compte.",
            "agent_service_quality": "Le conseiller a été très désagréable.",
            "usability_and_navigation": "Je ne trouve pas où changer mon adresse.",
            "app_and_site_errors": "L'application plante dès que je l'ouvre.",
        },
    },
}
_FOREIGN_WHEN = {"when_es": "la semana pasada", "when_de": "letzte Woche", "when_fr": "hier"}

SUBJECTS_BY_THEME: dict[str, tuple[str, ...]] = {
    "delays_and_waiting": ("Still waiting", "Any update?", "Why is this taking so long"),
    "refunds_and_returns": ("Refund request", "Return", "Where is my refund?"),
    "fees_and_billing_errors": ("Charged twice", "Wrong invoice", "Billing question"),
    "payment_failures": ("Payment failed", "Card declined", "Can't pay"),
    "checkout_friction": ("Checkout problem", "Promo code not working", "Can't complete order"),
    "account_access": ("Can't log in", "Password reset", "Locked out"),
    "missing_or_confusing_information": ("Question", "Product info", "Unclear instructions"),
    "product_defects": ("Broken item", "Faulty product", "Stopped working"),
    "delivery_problems": ("Parcel not received", "Damaged delivery", "Wrong item"),
    "cancellation": ("Cancel subscription", "Cancel order", "Close account"),
    "security_and_fraud": ("Suspicious activity", "Fraud?", "Account hacked"),
    "agent_service_quality": ("Complaint", "Very unhappy with support", "Escalation"),
    "usability_and_navigation": ("How do I...", "Can't find settings", "Website help"),
    "app_and_site_errors": ("App crash", "Error on website", "Site not working"),
}
SUBJECTS_BY_STAGE: dict[str, tuple[str, ...]] = {
    "awareness": ("Who are you?", "Question about Acme"),
    "exploration": ("Product question", "Info please"),
    "consideration": ("Before I buy", "Pricing question"),
    "purchase": ("Problem with my order", "Checkout"),
    "delivery": ("My order", "Delivery"),
    "support": ("Help with my account", "Support request"),
}
GENERIC_SUBJECTS: tuple[str, ...] = ("Help", "Hello", "(no subject)", "Re: your order", "Question")


# --------------------------------------------------------------------------------------------
# Truth and structure


def draw_truth(rng: random.Random, *, foreign_rate: float = 0.03) -> Truth:
    """Draw a stage, 0–2 themes that fit it, and a language (≈3 % non-English)."""
    stage = rng.choices(STAGES, weights=STAGE_WEIGHTS)[0]
    return Truth(stage, draw_themes(rng, stage), draw_language(rng, foreign_rate))


def draw_themes(rng: random.Random, stage: str, forced: str | None = None) -> tuple[str, ...]:
    """0 themes ≈ 18 %, 1 ≈ 57 %, 2 ≈ 25 %, drawn from the stage's plausible themes."""
    table = STAGE_THEMES[stage]
    names = tuple(table)
    weights = tuple(table.values())
    roll = rng.random()
    count = 0 if roll < 0.18 else (1 if roll < 0.75 else 2)
    chosen: list[str] = [forced] if forced else []
    target = max(count, len(chosen))
    while len(chosen) < target:
        pick = rng.choices(names, weights=weights)[0]
        if pick not in chosen:
            chosen.append(pick)
    return tuple(chosen)


def draw_language(rng: random.Random, foreign_rate: float = 0.03) -> str:
    """Mostly English; a small share of Spanish, German and French."""
    if rng.random() < foreign_rate:
        return rng.choice(("es", "de", "fr"))
    return "en"


def subject(rng: random.Random, truth: Truth) -> str:
    """A subject line: usually about the main theme, sometimes vague, like real subjects."""
    roll = rng.random()
    if truth.language != "en":
        return {"es": "Consulta", "de": "Anfrage", "fr": "Demande"}[truth.language]
    if truth.themes and roll < 0.65:
        return rng.choice(SUBJECTS_BY_THEME[truth.themes[0]])
    if truth.stage and roll < 0.88:
        return rng.choice(SUBJECTS_BY_STAGE[truth.stage])
    return rng.choice(GENERIC_SUBJECTS)


# --------------------------------------------------------------------------------------------
# Message rendering


def _typo(rng: random.Random, text: str) -> str:
    """Swap two letters inside one longer word (the commonest real typo)."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def _pii_sentence(rng: random.Random, email: str, phone: str) -> str:
    """A sentence that plants personal data the miner must redact."""
    roll = rng.random()
    if roll < 0.40:
        return fill(rng, rng.choice(("My order number is {order}.", "Order ref: {order}")))
    if roll < 0.60:
        return f"You can reach me on {phone}."
    if roll < 0.75:
        return f"Please reply to {email} instead."
    if roll < 0.88:
        return f"The card I used ends in {luhn_card(rng)[-4:]}, full number {luhn_card(rng)}."
    return f"For the refund my IBAN is {rng.choice(_IBANS)}."


def _signature(rng: random.Random, first: str, last: str, phone: str, channel: str) -> str:
    """Email/mobile signature blocks: ``--`` blocks, phone lines, 'Sent from my iPhone'."""
    roll = rng.random()
    if channel in ("email", "mobile") and roll < 0.18:
        return rng.choice(("Sent from my iPhone", "Sent from my Galaxy", "Get Outlook for Android"))
    if channel == "email" and roll < 0.45:
        return f"--\n{first} {last}\n{phone}"
    if roll < 0.60:
        return f"{first} {last}\nMobile: {phone}" if channel == "email" else first
    return first if rng.random() < 0.5 else ""


def compose_customer_text(
    rng: random.Random,
    truth: Truth,
    *,
    first: str,
    last: str,
    email: str,
    phone: str,
    channel: str,
    follow_up: bool = False,
) -> str:
    """One customer message of 1–6 sentences, without any quoted history.

    ``follow_up`` makes it read like a reply in an existing thread (shorter, no context).
    """
    if truth.language != "en":
        return _compose_foreign(rng, truth, first)
    lines: list[str] = []
    greet = rng.choice(GREETINGS)
    body: list[str] = []
    if follow_up:
        body.append(
            rng.choice(
                (
                    "Thanks for getting back to me.",
                    "That didn't fix it.",
                    "I tried what you said.",
                    "Sorry, one more thing.",
                    "Still the same problem.",
                    "Any news on this?",
                )
            )
        )
        if truth.themes:
            body.append(fill(rng, rng.choice(THEME_PHRASES[rng.choice(truth.themes)])))
    else:
        if truth.stage is not None:
            body.append(fill(rng, rng.choice(STAGE_PHRASES[truth.stage])))
        for theme in truth.themes:
            body.append(fill(rng, rng.choice(THEME_PHRASES[theme])))
        if not truth.themes:
            body.append(rng.choice(NEUTRAL_PHRASES))
    if rng.random() < 0.22:
        body.append(_pii_sentence(rng, email, phone))
    ask = rng.choice(ASK_PHRASES)
    if ask:
        body.append(ask)
    body = body[:6]
    if rng.random() < 0.15:
        k = rng.randrange(len(body))
        body[k] = _typo(rng, body[k])
    if channel in ("chat", "native_messaging", "mobile", "twitter") and rng.random() < 0.25:
        body[-1] = body[-1] + " " + rng.choice(EMOJI)
    elif rng.random() < 0.03:
        body[-1] = body[-1] + " " + rng.choice(EMOJI)
    if channel in ("chat", "native_messaging", "twitter"):
        text = " ".join(body)
        return text.lower() if rng.random() < 0.2 else text
    if greet:
        lines.append(greet)
    lines.append(" ".join(body))
    closer = rng.choice(CLOSERS)
    signature = _signature(rng, first, last, phone, channel)
    if closer:
        lines.append(closer + ("," if signature and rng.random() < 0.5 else ""))
    if signature:
        lines.append(signature)
    return "\n\n".join(lines) if rng.random() < 0.5 else "\n".join(lines)


def _compose_foreign(rng: random.Random, truth: Truth, first: str) -> str:
    bank = FOREIGN[truth.language]
    assert truth.stage is not None, "foreign tickets always carry customer text"
    greet = rng.choice(bank["greet"])
    closer = rng.choice(bank["close"])
    parts = [fill(rng, bank["stage"][truth.stage], **_FOREIGN_WHEN)]
    for theme in truth.themes:
        parts.append(fill(rng, bank["theme"][theme], **_FOREIGN_WHEN))
    return f"{greet}\n\n{' '.join(parts)}\n\n{closer}\n{first}"


def quote_gmail(previous: str, author: str, address: str, when: datetime) -> str:
    """A Gmail-style quoted reply chain appended below a reply."""
    stamp = f"{when:%a}, {when.day} {when:%b %Y} at {when:%H:%M}"
    quoted = "\n".join("> " + line if line else ">" for line in previous.splitlines())
    return f"On {stamp}, {author} <{address}> wrote:\n{quoted}"


def quote_outlook(previous: str, author: str, address: str, to: str, when: datetime) -> str:
    """An Outlook-style ``-----Original Message-----`` block appended below a reply."""
    stamp = f"{when:%A}, {when:%B} {when.day}, {when:%Y} {when:%I:%M %p}"
    return (
        "-----Original Message-----\n"
        f"From: {author} <{address}>\n"
        f"Sent: {stamp}\n"
        f"To: {to}\n"
        "Subject: RE: Your request\n\n"
        f"{previous}"
    )


def as_html(text: str) -> str:
    """Wrap plain text the way mail clients do, so the miner has to strip markup."""
    paras = [p.replace("\n", "<br>") for p in text.split("\n\n")]
    inner = "".join(f"<p>{p}</p>" for p in paras)
    return f'<div dir="ltr">{inner}<div><br></div></div>'


AGENT_OPENERS = (
    "Hi {name},",
    "Hello {name},",
    "Hi {name}, thanks for reaching out.",
    "Dear {name},",
    "Hi {name}, thanks for your patience.",
)
AGENT_BODIES: dict[str, tuple[str, ...]] = {
    "default": (
        "I've looked into this for you and passed it to the right team.",
        "Thanks for the details. Could you send us a photo or screenshot so we can check?",
        "I'm sorry for the trouble. I've escalated this and we'll update you within 24 hours.",
        "I've checked your account and everything looks fine on our side now.",
        "Could you confirm your order number so I can look this up?",
        "I completely understand your frustration and I'm on it.",
    ),
    "refunds_and_returns": ("I've issued a refund of {amount}; it takes 5-10 business days.",),
    "delays_and_waiting": ("Apologies for the wait, we're dealing with a high volume right now.",),
    "delivery_problems": ("I've opened a claim with {carrier} for the missing parcel.",),
    "payment_failures": ("Please try again now, our payment provider had a short outage.",),
    "account_access": ("I've sent a fresh password reset link to the email on file.",),
    "cancellation": ("Your subscription has been cancelled and you won't be charged again.",),
    "fees_and_billing_errors": ("I've refunded the duplicate charge of {amount}.",),
    "product_defects": ("We'll send a replacement {product} free of charge.",),
}
AGENT_CLOSERS = (
    "Best regards,\n{agent}\nAcme Support",
    "Kind regards,\n{agent} | Acme Customer Care",
    "Thanks,\n{agent}",
    "Have a great day!\n{agent} from Acme",
)
NOTE_BANK = (
    "Customer called twice about this. Escalating to tier 2.",
    "Checked with warehouse: parcel {order} left on time. Waiting on {carrier}.",
    "Looks like a duplicate of an earlier ticket, merging later.",
    "Refund of {amount} approved by team lead.",
    "Possible fraud, flagged to trust & safety. Do NOT share account details.",
    "Known bug, see JIRA APP-{days}41. Engineering aware.",
    "VIP customer, handle with care.",
    "Billing system shows a double capture, finance looped in.",
)
SYSTEM_BANK = (
    "Call from: {phone}\nTime of call: {time}\nCall duration: {dur}\nRecording: not available",
    "Chat started: {time}\n(transcript available in the chat log)",
    "This ticket was created from a merged request.",
    "Satisfaction survey sent to requester.",
)
OUTBOUND_BANK = (
    "Hi {name},\n\nYour order {order} has been delayed at our warehouse. We expect it to ship "
    "within {days} days. No action is needed from you.\n\nAcme Support",
    "Hi {name},\n\nWe noticed a failed renewal on your {plan}. Please update your payment "
    "details at your convenience.\n\nAcme Billing",
    "Hello {name},\n\nFollowing our phone call, here is the summary of the changes we made to "
    "your account.\n\nBest,\n{agent}",
    "Hi {name}, a quick survey: how was your recent experience with Acme?",
)


def agent_reply(rng: random.Random, truth: Truth, customer_first: str, agent_first: str) -> str:
    """A public agent reply: polite boilerplate plus, often, theme vocabulary (a trap: the
    miner must not read agent text as customer feedback)."""
    theme = truth.themes[0] if truth.themes else None
    body_bank = AGENT_BODIES.get(theme or "", ()) + AGENT_BODIES["default"]
    return "\n\n".join(
        (
            fill(rng, rng.choice(AGENT_OPENERS), name=customer_first),
            fill(rng, rng.choice(body_bank)),
            fill(rng, rng.choice(AGENT_CLOSERS), agent=agent_first),
        )
    )


def agent_note(rng: random.Random) -> str:
    """A private internal note."""
    return fill(rng, rng.choice(NOTE_BANK))


def system_comment(rng: random.Random, when: datetime) -> str:
    """A system comment (voice call summary, chat start, merge/survey notices)."""
    return fill(
        rng,
        rng.choice(SYSTEM_BANK),
        phone=phone_number(rng),
        time=when.strftime("%Y-%m-%d %H:%M UTC"),
        dur=f"{rng.randrange(1, 20):02d}:{rng.randrange(60):02d}",
    )


def outbound_message(rng: random.Random, customer_first: str, agent_first: str) -> str:
    """The first comment of an agent-created / proactive ticket (no customer text at all)."""
    return fill(rng, rng.choice(OUTBOUND_BANK), name=customer_first, agent=agent_first)


def satisfaction_comment(rng: random.Random, good: bool) -> str:
    """Solicited CSAT comment text (kept out of the unsolicited stream by the miner)."""
    if good:
        return rng.choice(("Quick and helpful, thanks!", "Great service", "Sorted in minutes"))
    return rng.choice(("Took way too long", "Problem not solved", "Agent didn't listen"))


def utc(ts: int) -> datetime:
    """Unix seconds → aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)
