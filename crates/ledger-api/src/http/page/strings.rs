//! Every text of the web page, in one table per language. `{name}` marks a
//! value filled in by the server (or, for the messages the script shows, by
//! the script).

use serde::Deserialize;
use utoipa::ToSchema;

/// The languages the page is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }

    /// The first language of an `Accept-Language` header the page is
    /// written in (a range with `q=0` excluded); English otherwise.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else { return Lang::En };
        for range in header.split(',') {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let refused = parts.any(|parameter| {
                let parameter = parameter.trim();
                parameter.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            if refused {
                continue;
            }
            let primary = tag.split('-').next().unwrap_or_default();
            if let Some(lang) = Lang::ALL.into_iter().find(|lang| lang.code() == primary) {
                return lang;
            }
        }
        Lang::En
    }
}

/// The page's texts in one language.
#[derive(Debug)]
pub struct Strings {
    pub title: &'static str,
    pub intro: &'static str,
    pub token_label: &'static str,
    pub token_help: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub noscript: &'static str,
    pub other_language: &'static str,
    pub loading: &'static str,
    // Messages the script shows.
    pub unauthorized: &'static str,
    pub refused: &'static str,
    pub network: &'static str,
    pub server_error: &'static str,
    pub checking: &'static str,
    pub proof_holds: &'static str,
    pub proof_fails: &'static str,
    pub reason_key: &'static str,
    pub reason_signature: &'static str,
    pub reason_proof: &'static str,
    pub reason_unsupported: &'static str,
    // The programmes.
    pub programmes: &'static str,
    pub no_programmes: &'static str,
    pub as_of_day: &'static str,
    pub as_of_seq: &'static str,
    pub not_yet_registered: &'static str,
    pub committed: &'static str,
    pub received: &'static str,
    pub allocated: &'static str,
    pub disbursed: &'static str,
    pub available: &'static str,
    pub reached: &'static str,
    pub fewer_than: &'static str,
    pub by_country: &'static str,
    pub country: &'static str,
    pub country_bar: &'static str,
    pub by_month: &'static str,
    pub month: &'static str,
    pub cash: &'static str,
    pub in_kind: &'static str,
    pub total: &'static str,
    pub month_bar: &'static str,
    pub nothing_disbursed: &'static str,
    pub figures_table: &'static str,
    // The in-browser check.
    pub check_heading: &'static str,
    pub check_intro: &'static str,
    pub commitment: &'static str,
    pub receipt: &'static str,
    pub entry: &'static str,
    pub check_button: &'static str,
    pub nothing_to_check: &'static str,
    // The chain.
    pub chain: &'static str,
    pub verified_events: &'static str,
    pub head_hash: &'static str,
    pub chain_broken: &'static str,
    pub checkpoint: &'static str,
    pub checkpoint_size: &'static str,
    pub root_hash: &'static str,
    pub signed_at: &'static str,
    pub key_id: &'static str,
    pub no_checkpoint: &'static str,
    pub download_json: &'static str,
    pub download_note: &'static str,
}

pub static EN: Strings = Strings {
    title: "Reintegration ledger: donors' view",
    intro: "Sign in with your access token to see the programmes you may see, and check for yourself that their entries are in the signed ledger.",
    token_label: "Access token",
    token_help: "The token stays in this browser tab: it is never put in a web address, a cookie or a log.",
    sign_in: "Sign in",
    sign_out: "Sign out",
    noscript: "This page needs JavaScript to send your token safely.",
    other_language: "Français",
    loading: "Loading…",
    unauthorized: "This token was not accepted: it is wrong, or it has been revoked.",
    refused: "The ledger refused this request.",
    network: "The ledger could not be reached. Check the connection and try again.",
    server_error: "The ledger could not answer just now. Try again in a moment.",
    checking: "Checking in your browser…",
    proof_holds: "Verified in your browser: event {seq} is included in the ledger's tree of {size} events, and the checkpoint of that tree is signed by key {key}.",
    proof_fails: "The check FAILED: {reason}. Do not rely on this entry; tell the programme's auditor.",
    reason_key: "the checkpoint names another key than the one the ledger publishes",
    reason_signature: "the checkpoint's signature does not verify",
    reason_proof: "the inclusion proof does not lead to the signed root",
    reason_unsupported: "this browser cannot check Ed25519 signatures",
    programmes: "Your programmes",
    no_programmes: "There is no programme to show for this token.",
    as_of_day: "Figures at the end of {day} (UTC), the last closed day.",
    as_of_seq: "Figures up to event {seq}.",
    not_yet_registered: "{programme}: no figures yet at the end of {day}.",
    committed: "Committed",
    received: "Received",
    allocated: "Allocated",
    disbursed: "Disbursed",
    available: "Available",
    reached: "Returnees reached",
    fewer_than: "fewer than {n}",
    by_country: "Disbursed by country",
    country: "Country",
    country_bar: "{country}: {disbursed} of {allocated} {currency} allocated disbursed",
    by_month: "Disbursements by month",
    month: "Month",
    cash: "Cash",
    in_kind: "In kind",
    total: "Total",
    month_bar: "{month}: {total} {currency} ({cash} cash, {in_kind} in kind)",
    nothing_disbursed: "Nothing has been disbursed yet.",
    figures_table: "The same figures as a table",
    check_heading: "Check an entry yourself",
    check_intro: "Your browser fetches the entry's inclusion proof and the signed checkpoint, and checks both itself: SHA-256 for the tree, Ed25519 for the signature.",
    commitment: "Commitment",
    receipt: "Receipt",
    entry: "{kind} of {amount} {currency} from {donor} on {date} (event {seq})",
    check_button: "Check this entry in my browser",
    nothing_to_check: "No funding entry of this programme is covered by a signed checkpoint yet.",
    chain: "The ledger's chain",
    verified_events: "Events verified (links and tags)",
    head_hash: "Hash of the last event",
    chain_broken: "The chain does not verify: {reason}",
    checkpoint: "Latest signed checkpoint",
    checkpoint_size: "Events covered",
    root_hash: "Root hash",
    signed_at: "Signed at",
    key_id: "Key id",
    no_checkpoint: "No checkpoint has been signed yet.",
    download_json: "Download the checkpoint (JSON)",
    download_note: "Download the checkpoint note (C2SP)",
};

pub static FR: Strings = Strings {
    title: "Registre de réintégration : espace des bailleurs",
    intro: "Connectez-vous avec votre jeton d'accès pour voir les programmes qui vous sont ouverts, et vérifier vous-même que leurs écritures figurent dans le registre signé.",
    token_label: "Jeton d'accès",
    token_help: "Le jeton reste dans cet onglet du navigateur : il n'est jamais mis dans une adresse web, un cookie ni un journal.",
    sign_in: "Se connecter",
    sign_out: "Se déconnecter",
    noscript: "Cette page a besoin de JavaScript pour envoyer votre jeton en sécurité.",
    other_language: "English",
    loading: "Chargement…",
    unauthorized: "Ce jeton n'a pas été accepté : il est erroné, ou il a été révoqué.",
    refused: "Le registre a refusé cette demande.",
    network: "Le registre est injoignable. Vérifiez la connexion et réessayez.",
    server_error: "Le registre ne peut pas répondre pour l'instant. Réessayez dans un moment.",
    checking: "Vérification dans votre navigateur…",
    proof_holds: "Vérifié dans votre navigateur : l'événement {seq} figure dans l'arbre du registre de {size} événements, et le point de contrôle de cet arbre est signé par la clé {key}.",
    proof_fails: "La vérification a ÉCHOUÉ : {reason}. Ne vous fiez pas à cette écriture ; prévenez l'auditeur du programme.",
    reason_key: "le point de contrôle nomme une autre clé que celle que publie le registre",
    reason_signature: "la signature du point de contrôle n'est pas valide",
    reason_proof: "la preuve d'inclusion ne mène pas à la racine signée",
    reason_unsupported: "ce navigateur ne sait pas vérifier les signatures Ed25519",
    programmes: "Vos programmes",
    no_programmes: "Aucun programme à afficher pour ce jeton.",
    as_of_day: "Chiffres à la fin du {day} (UTC), dernier jour clos.",
    as_of_seq: "Chiffres jusqu'à l'événement {seq}.",
    not_yet_registered: "{programme} : pas encore de chiffres à la fin du {day}.",
    committed: "Engagé",
    received: "Reçu",
    allocated: "Alloué",
    disbursed: "Décaissé",
    available: "Disponible",
    reached: "Personnes de retour aidées",
    fewer_than: "moins de {n}",
    by_country: "Décaissé par pays",
    country: "Pays",
    country_bar: "{country} : {disbursed} décaissés sur {allocated} {currency} alloués",
    by_month: "Décaissements par mois",
    month: "Mois",
    cash: "Espèces",
    in_kind: "En nature",
    total: "Total",
    month_bar: "{month} : {total} {currency} ({cash} en espèces, {in_kind} en nature)",
    nothing_disbursed: "Rien n'a encore été décaissé.",
    figures_table: "Les mêmes chiffres en tableau",
    check_heading: "Vérifier une écriture vous-même",
    check_intro: "Votre navigateur récupère la preuve d'inclusion de l'écriture et le point de contrôle signé, et les vérifie lui-même : SHA-256 pour l'arbre, Ed25519 pour la signature.",
    commitment: "Engagement",
    receipt: "Versement reçu",
    entry: "{kind} de {amount} {currency} de {donor} le {date} (événement {seq})",
    check_button: "Vérifier cette écriture dans mon navigateur",
    nothing_to_check: "Aucune écriture de financement de ce programme n'est encore couverte par un point de contrôle signé.",
    chain: "La chaîne du registre",
    verified_events: "Événements vérifiés (liens et sceaux)",
    head_hash: "Empreinte du dernier événement",
    chain_broken: "La chaîne ne se vérifie pas : {reason}",
    checkpoint: "Dernier point de contrôle signé",
    checkpoint_size: "Événements couverts",
    root_hash: "Empreinte racine",
    signed_at: "Signé le",
    key_id: "Identifiant de clé",
    no_checkpoint: "Aucun point de contrôle n'a encore été signé.",
    download_json: "Télécharger le point de contrôle (JSON)",
    download_note: "Télécharger la note du point de contrôle (C2SP)",
};

/// `template` with each `{name}` replaced by its value (values are
/// inserted as given: escape the result, not the values, when it is HTML).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut text = template.to_string();
    for (name, value) in values {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_first_language_the_page_has() {
        assert_eq!(Lang::from_accept_language(Some("fr-SN,fr;q=0.9,en;q=0.5")), Lang::Fr);
        assert_eq!(Lang::from_accept_language(Some("de-DE, en-GB;q=0.8")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("fr;q=0, en")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("wo, fr")), Lang::Fr);
        assert_eq!(Lang::from_accept_language(None), Lang::En);
    }

    #[test]
    fn a_template_is_filled_by_name() {
        assert_eq!(fill("{a} and {b}, {a}", &[("a", "x"), ("b", "y")]), "x and y, x");
    }
}
