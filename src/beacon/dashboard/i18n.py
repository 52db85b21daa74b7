"""The dashboard's words in French and English, and the choice between them.

The language comes from the ``lang`` cookie (set by the switch in the page
header) else from ``Accept-Language``, else French.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["LANGUAGES", "MESSAGES", "Language", "negotiate", "translate"]

Language = Literal["fr", "en"]
#: Supported languages, the default first.
LANGUAGES: tuple[Language, ...] = ("fr", "en")

#: Every text of the dashboard, by key, in each language.
MESSAGES: dict[str, dict[Language, str]] = {
    "app_title": {"fr": "Statistiques", "en": "Statistics"},
    "nav_overview": {"fr": "Vue d'ensemble", "en": "Overview"},
    "nav_campaigns": {"fr": "Campagnes", "en": "Campaigns"},
    "nav_site": {"fr": "Site", "en": "Site"},
    "nav_consent": {"fr": "Consentement", "en": "Consent"},
    "nav_users": {"fr": "Comptes", "en": "Accounts"},
    "skip": {"fr": "Aller au contenu", "en": "Skip to content"},
    "logout": {"fr": "Se déconnecter", "en": "Log out"},
    "signed_in_as": {"fr": "Connecté en tant que", "en": "Signed in as"},
    "language": {"fr": "Langue", "en": "Language"},
    "login_title": {"fr": "Connexion", "en": "Log in"},
    "username": {"fr": "Nom du compte", "en": "Account name"},
    "password": {"fr": "Mot de passe", "en": "Password"},
    "login_button": {"fr": "Se connecter", "en": "Log in"},
    "login_failed": {
        "fr": "Nom de compte ou mot de passe incorrect.",
        "en": "Wrong account name or password.",
    },
    "login_throttled": {
        "fr": "Trop d'essais infructueux. Réessayez dans {minutes} min.",
        "en": "Too many failed attempts. Try again in {minutes} min.",
    },
    "csrf_failed": {
        "fr": "Le formulaire a expiré. Rechargez la page et recommencez.",
        "en": "The form expired. Reload the page and try again.",
    },
    "form_too_large": {
        "fr": "Le formulaire envoyé est trop volumineux.",
        "en": "The form sent is too large.",
    },
    "filters": {"fr": "Filtres", "en": "Filters"},
    "from": {"fr": "Du", "en": "From"},
    "to": {"fr": "Au", "en": "To"},
    "site": {"fr": "Site", "en": "Site"},
    "all_sites": {"fr": "Tous les sites", "en": "All sites"},
    "apply": {"fr": "Appliquer", "en": "Apply"},
    "download_csv": {"fr": "Télécharger en CSV", "en": "Download as CSV"},
    "no_data": {"fr": "Aucune donnée sur cette période.", "en": "No data for this period."},
    "chart_table_note": {
        "fr": "Les valeurs du graphique figurent dans le tableau qui suit.",
        "en": "The chart's values are in the table that follows.",
    },
    "overview_title": {"fr": "Vue d'ensemble", "en": "Overview"},
    "last_30_days": {"fr": "30 derniers jours", "en": "Last 30 days"},
    "latest_campaigns": {"fr": "Dernières campagnes", "en": "Latest campaigns"},
    "all_campaigns": {"fr": "Toutes les campagnes", "en": "All campaigns"},
    "campaigns_title": {"fr": "Campagnes e-mail", "en": "E-mail campaigns"},
    "campaign": {"fr": "Campagne", "en": "Campaign"},
    "first_seen": {"fr": "Premier événement", "en": "First event"},
    "reached": {"fr": "Destinataires atteints", "en": "Recipients reached"},
    "opens": {"fr": "Ouvertures", "en": "Opens"},
    "opens_total": {"fr": "Ouvertures (total)", "en": "Opens (total)"},
    "opens_unique": {"fr": "Ouvertures uniques", "en": "Unique opens"},
    "opens_human": {"fr": "Ouvertures humaines", "en": "Human opens"},
    "opens_machine": {"fr": "Ouvertures machine", "en": "Machine opens"},
    "clicks": {"fr": "Clics", "en": "Clicks"},
    "clicks_total": {"fr": "Clics (total)", "en": "Clicks (total)"},
    "clicks_unique": {"fr": "Clics uniques", "en": "Unique clicks"},
    "clicks_human": {"fr": "Clics humains", "en": "Human clicks"},
    "clicks_scanner": {"fr": "Clics de scanners", "en": "Scanner clicks"},
    "unique_human_clicks": {"fr": "Clics humains uniques", "en": "Unique human clicks"},
    "ctr": {"fr": "Taux de clic (CTR)", "en": "Click-through rate (CTR)"},
    "cto": {"fr": "Taux de réactivité (CTO)", "en": "Click-to-open rate (CTO)"},
    "unsubscribes": {"fr": "Désinscriptions", "en": "Unsubscribes"},
    "timeline": {"fr": "Ouvertures et clics dans le temps", "en": "Opens and clicks over time"},
    "timeline_note": {
        "fr": "Par heure pendant au moins 48 h (jusqu'à la fin de ce jour UTC), puis par jour.",
        "en": "Hourly for at least 48 h (to the end of that UTC day), then daily.",
    },
    "start_utc": {"fr": "Début (UTC)", "en": "Start (UTC)"},
    "bucket": {"fr": "Pas", "en": "Bucket"},
    "hour": {"fr": "heure", "en": "hour"},
    "day": {"fr": "jour", "en": "day"},
    "links": {"fr": "Liens", "en": "Links"},
    "link": {"fr": "Lien", "en": "Link"},
    "link_table": {"fr": "Tableau des liens", "en": "Link table"},
    "devices": {"fr": "Appareils", "en": "Devices"},
    "browsers": {"fr": "Navigateurs", "en": "Browsers"},
    "oses": {"fr": "Systèmes", "en": "Operating systems"},
    "device_note": {
        "fr": "Ouvertures et clics humains seulement : les proxys et scanners masquent "
        "l'appareil du destinataire.",
        "en": "Human opens and clicks only: proxies and scanners hide the recipient's device.",
    },
    "value": {"fr": "Valeur", "en": "Value"},
    "events": {"fr": "Événements", "en": "Events"},
    "visitors": {"fr": "Visiteurs", "en": "Visitors"},
    "recipients": {"fr": "Destinataires", "en": "Recipients"},
    "site_title": {"fr": "Audience du site", "en": "Site audience"},
    "pageviews": {"fr": "Pages vues", "en": "Page views"},
    "bot_pageviews": {"fr": "Pages vues par des robots", "en": "Bot page views"},
    "ad_clicks": {"fr": "Clics sur les publicités", "en": "Ad clicks"},
    "uniques_note": {
        "fr": "Visiteurs uniques : le condensat qui les compte change de sel chaque jour, donc "
        "sur une période ce sont les visiteurs uniques quotidiens additionnés (une personne "
        "venue trois jours compte trois fois). Les robots sont comptés à part.",
        "en": "Unique visitors: the hash that counts them changes its salt every day, so over a "
        "range this is daily uniques summed (someone who came on three days counts three "
        "times). Bots are counted apart.",
    },
    "daily": {"fr": "Par jour", "en": "Per day"},
    "pages": {"fr": "Pages les plus vues", "en": "Top pages"},
    "referrers": {"fr": "Sites référents", "en": "Referrer hosts"},
    "utm_source": {"fr": "Source UTM", "en": "UTM source"},
    "utm_medium": {"fr": "Support UTM", "en": "UTM medium"},
    "utm_campaign": {"fr": "Campagne UTM", "en": "UTM campaign"},
    "bots": {"fr": "Robots", "en": "Bots"},
    "ads": {"fr": "Publicités cliquées", "en": "Ads clicked"},
    "k_note": {
        "fr": "Protection de la vie privée : une valeur vue par moins de {k} personnes "
        "distinctes est regroupée dans « other ».",
        "en": "Privacy: a value seen by fewer than {k} distinct people is merged into "
        "\u201cother\u201d.",
    },
    "consent_title": {"fr": "Taux de consentement", "en": "Consent rates"},
    "consent_missing": {
        "fr": "Aucun reçu de consentement n'est enregistré dans cette base : la table "
        "consent_receipts n'existe pas.",
        "en": "No consent receipt is stored in this database: the consent_receipts table "
        "does not exist.",
    },
    "decisions": {"fr": "Décisions", "en": "Decisions"},
    "category": {"fr": "Catégorie", "en": "Category"},
    "granted": {"fr": "Acceptées", "en": "Granted"},
    "refused": {"fr": "Refusées", "en": "Refused"},
    "customized": {"fr": "Personnalisées", "en": "Customized"},
    "optin_rate": {"fr": "Taux d'acceptation", "en": "Opt-in rate"},
    "refusal_rate": {"fr": "Taux de refus", "en": "Refusal rate"},
    "by_day": {"fr": "Par jour", "en": "Per day"},
    "by_revision": {"fr": "Par version de la politique", "en": "Per policy revision"},
    "revision": {"fr": "Version", "en": "Revision"},
    "actions": {"fr": "Décisions par action", "en": "Decisions per action"},
    "action": {"fr": "Action", "en": "Action"},
    "users_title": {"fr": "Comptes", "en": "Accounts"},
    "role": {"fr": "Rôle", "en": "Role"},
    "created": {"fr": "Créé le", "en": "Created"},
    "add_user": {"fr": "Ajouter un compte", "en": "Add an account"},
    "add": {"fr": "Ajouter", "en": "Add"},
    "remove": {"fr": "Supprimer", "en": "Remove"},
    "new_token": {"fr": "Nouveau jeton d'API", "en": "New API token"},
    "token_created": {
        "fr": "Jeton d'API de {name} (affiché une seule fois) :",
        "en": "API token of {name} (shown only once):",
    },
    "user_added": {"fr": "Compte {name} ajouté.", "en": "Account {name} added."},
    "cannot_remove_self": {
        "fr": "Vous ne pouvez pas supprimer votre propre compte.",
        "en": "You cannot remove your own account.",
    },
    "user_removed": {"fr": "Compte {name} supprimé.", "en": "Account {name} removed."},
    "forbidden": {
        "fr": "Cette page est réservée aux administrateurs.",
        "en": "This page is for administrators only.",
    },
    "not_found": {"fr": "Page introuvable.", "en": "Page not found."},
    "unknown_campaign": {
        "fr": "Aucun événement n'est enregistré pour cette campagne.",
        "en": "No event is recorded for this campaign.",
    },
    "bad_request": {"fr": "Requête invalide", "en": "Bad request"},
    "store_down": {
        "fr": "La base de statistiques ne répond pas. Réessayez dans un instant.",
        "en": "The statistics database does not answer. Try again in a moment.",
    },
    "back": {"fr": "Retour", "en": "Back"},
    "demo_note": {
        "fr": "Données de démonstration générées automatiquement.",
        "en": "Automatically generated demo data.",
    },
}


def translate(key: str, language: Language, **values: object) -> str:
    """The text ``key`` in ``language``, with ``{name}`` placeholders filled."""
    text = MESSAGES[key][language]
    return text.format(**values) if values else text


def negotiate(cookie: str | None, accept_language: str | None) -> Language:
    """The language to show: the cookie's choice, else the browser's preference, else French."""
    if cookie in LANGUAGES:
        return cookie
    ranked: list[tuple[float, int, Language]] = []
    for index, part in enumerate((accept_language or "")[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower()[:2]
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return sorted(ranked)[0][2] if ranked else LANGUAGES[0]
