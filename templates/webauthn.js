// Latchkey's WebAuthn ceremonies. Loaded (never inline) by the pages that use passkeys:
//  - form[data-webauthn="get"]: sign in. The challenge comes from POST data-options (the CSRF
//    token as the body); the assertion is put in the form's "credential" field as JSON and the
//    form is submitted like any other. With data-conditional, the browser's autofill offers
//    passkeys on the username field (conditional mediation) as soon as the page loads.
//  - form[data-webauthn="create"]: register, with the options in data-options-json.
// Binary members travel as base64url without padding, as webauthn-rs expects.
"use strict";
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function toBytes(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    return Uint8Array.from(atob(s), function (c) { return c.charCodeAt(0); });
  }
  function toB64url(buf) {
    var s = "", bytes = new Uint8Array(buf);
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (d) { return Object.assign({}, d, { id: toBytes(d.id) }); });
  }

  function creationOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = toBytes(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: toBytes(pk.user.id) });
    pk.excludeCredentials = descriptors(pk.excludeCredentials);
    return { publicKey: pk };
  }
  function requestOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = toBytes(pk.challenge);
    pk.allowCredentials = descriptors(pk.allowCredentials);
    return { publicKey: pk };
  }

  function credentialJson(c) {
    var r = c.response, out = { id: c.id, rawId: toB64url(c.rawId), type: c.type, response: {} };
    if (r.attestationObject) {
      out.response.attestationObject = toB64url(r.attestationObject);
      out.response.clientDataJSON = toB64url(r.clientDataJSON);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = toB64url(r.authenticatorData);
      out.response.clientDataJSON = toB64url(r.clientDataJSON);
      out.response.signature = toB64url(r.signature);
      if (r.userHandle) out.response.userHandle = toB64url(r.userHandle);
    }
    out.extensions = c.getClientExtensionResults ? c.getClientExtensionResults() : {};
    return JSON.stringify(out);
  }

  function send(form, credential) {
    form.elements.credential.value = credentialJson(credential);
    form.submit();
  }

  function challenge(form) {
    var body = new URLSearchParams({ csrf: form.elements.csrf.value });
    return fetch(form.dataset.options, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("challenge " + r.status);
        return r.json();
      });
  }

  function setupGet(form) {
    var pending = null;
    form.hidden = false;
    function get(conditional) {
      if (pending) pending.abort();
      var abort = new AbortController();
      pending = abort;
      return challenge(form).then(function (o) {
        var options = requestOptions(o);
        options.signal = abort.signal;
        if (conditional) options.mediation = "conditional";
        else delete options.mediation;
        return navigator.credentials.get(options);
      }).then(function (c) {
        if (c) send(form, c);
      });
    }
    form.addEventListener("submit", function (e) {
      if (form.elements.credential.value) return;
      e.preventDefault();
      // Without an answer the form is still posted, and the server says what went wrong.
      get(false).catch(function (err) {
        if (err && err.name === "AbortError") return;
        form.submit();
      });
    });
    if (form.dataset.conditional && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (yes) {
        if (yes) get(true).catch(function () {});
      });
    }
  }

  function setupCreate(form) {
    form.addEventListener("submit", function (e) {
      if (form.elements.credential.value) return;
      e.preventDefault();
      var options = creationOptions(JSON.parse(form.dataset.optionsJson));
      navigator.credentials.create(options).then(function (c) { send(form, c); }, function () { form.submit(); });
    });
  }

  document.querySelectorAll('form[data-webauthn="get"]').forEach(setupGet);
  document.querySelectorAll('form[data-webauthn="create"]').forEach(setupCreate);
})();
