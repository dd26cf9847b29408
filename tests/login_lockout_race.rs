//! The per-account throttle holds under a race: attempts are counted before anything is
//! checked (one atomic increment in the ephemeral store), so of many simultaneous guesses no
//! more than the limit are ever judged; and they count per account, whichever name was typed.

mod common;

use common::*;

#[tokio::test]
async fn forty_parallel_wrong_passwords_are_judged_at_most_the_limit() {
    let server = Server::start_with(&[("LATCHKEY_LOGIN_MAX_FAILURES", "5")]);
    server.add_alice();
    let c = server.first_party_client();
    let browser = server.browser();
    let page = browser.follow(&browser.authorize(&auth_params(&c, "openid", "s", "n")).await).await;
    let form = login_form(&page).unwrap_or_else(|| panic!("{page:?}"));

    let guesses = (0..40).map(|_| browser.submit(&form, &[("username", USER), ("password", "not-her-password")]));
    let answers = futures::future::join_all(guesses).await;
    assert!(answers.iter().all(|r| r.status == 200 && r.location().is_none()), "all refused: {answers:?}");

    let failures = server.db_strings("SELECT detail FROM audit_events WHERE kind = 'login.failed'");
    let judged = failures.iter().filter(|d| d.contains("wrong credentials")).count();
    let throttled = failures.iter().filter(|d| d.contains("account throttled")).count();
    assert!(judged <= 5, "no more than the limit were checked: {judged} of {failures:?}");
    assert_eq!(judged + throttled, 40, "{failures:?}");

    // The same account by its email address: the same count, so even the right password waits.
    let r = browser.submit(&form, &[("username", "alice@example.com"), ("password", PASSWORD)]).await;
    assert!(r.location().is_none(), "{r:?}");
    assert!(r.body.contains("Too many failed attempts"), "{r:?}");
}
