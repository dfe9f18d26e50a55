// The donors' page: sign-in, the programmes as the server renders them, and
// the in-browser check of an entry's inclusion in the signed tree.
//
// The token is kept in this tab's sessionStorage and sent only as an
// `Authorization: Bearer` header: never in a URL, a cookie or the page.
"use strict";

(function () {
  const TOKEN_KEY = "ledger-token";
  const messages = document.getElementById("messages").dataset;
  const lang = document.documentElement.lang;
  const status = document.getElementById("status");
  const signIn = document.getElementById("sign-in");
  const signedIn = document.getElementById("signed-in");
  const content = document.getElementById("content");

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  }

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  // A failed request, as the plain message to show.
  class PageError extends Error {}

  async function request(path, accept) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    let response;
    try {
      response = await fetch(path, {
        headers: { Authorization: "Bearer " + token, Accept: accept },
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (error) {
      throw new PageError(messages.network);
    }
    if (response.status === 401) {
      throw new PageError(messages.unauthorized);
    }
    if (response.status === 403 || response.status === 404 || response.status === 422) {
      let detail = "";
      try {
        detail = (await response.json()).detail || "";
      } catch (error) {
        detail = "";
      }
      throw new PageError(messages.refused + (detail ? " " + detail : ""));
    }
    if (!response.ok) {
      throw new PageError(messages.serverError);
    }
    return response;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    content.replaceChildren();
    signedIn.hidden = true;
    signIn.hidden = false;
    say(message || "");
  }

  async function load() {
    say(messages.loading);
    try {
      const response = await request("/page/programmes?lang=" + encodeURIComponent(lang), "text/html");
      // The fragment is rendered by the ledger, every value escaped.
      content.innerHTML = await response.text();
      signIn.hidden = true;
      signedIn.hidden = false;
      say("");
      // Screen readers start at the programmes' heading.
      const heading = content.querySelector("h2");
      if (heading) {
        heading.tabIndex = -1;
        heading.focus();
      }
    } catch (error) {
      if (error instanceof PageError) {
        signOut(error.message);
      } else {
        signOut(messages.serverError);
      }
    }
  }

  document.getElementById("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token");
    const token = input.value.trim();
    input.value = "";
    if (!token) {
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    load();
  });

  document.getElementById("sign-out").addEventListener("click", () => signOut(""));

  // --- Hashes and signatures, with WebCrypto only.

  function bytesOfHex(hex) {
    if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) {
      throw new Error("not lower-case hex");
    }
    const bytes = new Uint8Array(hex.length / 2);
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = parseInt(hex.substr(i * 2, 2), 16);
    }
    return bytes;
  }

  function hexOfBytes(bytes) {
    return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  async function sha256(parts) {
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    const input = new Uint8Array(length);
    let offset = 0;
    for (const part of parts) {
      input.set(part, offset);
      offset += part.length;
    }
    return new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  }

  // RFC 9162 section 2.1.1: leaf = SHA-256(0x00 || event hash),
  // node = SHA-256(0x01 || left || right).
  const leafHash = (eventHash) => sha256([Uint8Array.of(0), eventHash]);
  const nodeHash = (left, right) => sha256([Uint8Array.of(1), left, right]);

  // RFC 9162 section 2.1.3.2 (see docs/merkle.md): the root the proof leads to.
  async function rootFromInclusion(eventHash, leafIndex, size, proof) {
    if (leafIndex >= size) {
      return null;
    }
    let fn = leafIndex;
    let sn = size - 1;
    let r = await leafHash(eventHash);
    for (const p of proof) {
      if (sn === 0) {
        return null;
      }
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) {
            fn = Math.floor(fn / 2);
            sn = Math.floor(sn / 2);
          }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  // The signed message of docs/merkle.md ("Signed message").
  function checkpointMessage(checkpoint) {
    const text =
      "reintegration-ledger checkpoint v1\n" +
      checkpoint.tree_size + "\n" +
      checkpoint.root_hash + "\n" +
      checkpoint.created_at + "\n";
    return new TextEncoder().encode(text);
  }

  // Checks entry `seq` against the checkpoint of `size` events; the reason
  // it fails, or null when it holds.
  async function checkInclusion(seq, size) {
    const [proofAnswer, checkpointAnswer, keyAnswer] = await Promise.all([
      request("/v1/proofs/inclusion?seq=" + seq + "&size=" + size, "application/json"),
      request("/v1/checkpoints/" + size, "application/json"),
      request("/v1/checkpoints/public-key", "application/json"),
    ]);
    const proof = await proofAnswer.json();
    const checkpoint = await checkpointAnswer.json();
    const key = await keyAnswer.json();
    let publicKey;
    try {
      publicKey = bytesOfHex(key.public_key || "");
    } catch (error) {
      return { reason: messages.reasonKey };
    }
    const keyId = hexOfBytes((await sha256([publicKey])).slice(0, 8));
    if (publicKey.length !== 32 || keyId !== checkpoint.key_id) {
      return { reason: messages.reasonKey };
    }
    let signatureHolds;
    try {
      const verifier = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      signatureHolds = await crypto.subtle.verify(
        { name: "Ed25519" },
        verifier,
        bytesOfHex(checkpoint.signature),
        checkpointMessage(checkpoint),
      );
    } catch (error) {
      if (error && error.name === "NotSupportedError") {
        return { reason: messages.reasonUnsupported };
      }
      signatureHolds = false;
    }
    if (!signatureHolds) {
      return { reason: messages.reasonSignature };
    }
    let root = null;
    try {
      if (proof.seq === seq && proof.size === checkpoint.tree_size && proof.leaf_index === seq - 1) {
        root = await rootFromInclusion(bytesOfHex(proof.event_hash), proof.leaf_index, proof.size, proof.proof.map(bytesOfHex));
      }
    } catch (error) {
      root = null;
    }
    if (root === null || hexOfBytes(root) !== checkpoint.root_hash) {
      return { reason: messages.reasonProof };
    }
    return { keyId: checkpoint.key_id };
  }

  async function onCheck(button) {
    const result = button.parentElement.querySelector(".proof-result");
    const seq = Number(button.dataset.seq);
    const size = Number(button.dataset.size);
    result.className = "proof-result";
    result.textContent = messages.checking;
    button.disabled = true;
    try {
      const outcome = await checkInclusion(seq, size);
      if (outcome.reason) {
        result.classList.add("fails");
        result.textContent = fill(messages.proofFails, { reason: outcome.reason });
      } else {
        result.classList.add("holds");
        result.textContent = fill(messages.proofHolds, { seq: seq, size: size, key: outcome.keyId });
      }
    } catch (error) {
      result.classList.add("fails");
      result.textContent = error instanceof PageError ? error.message : messages.serverError;
    } finally {
      button.disabled = false;
    }
  }

  async function onDownload(button) {
    const json = button.dataset.download === "json";
    try {
      const response = json
        ? await request("/v1/checkpoints/latest", "application/json")
        : await request("/checkpoint", "text/plain");
      const blob = new Blob([await response.text()], { type: json ? "application/json" : "text/plain" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = json ? "checkpoint.json" : "checkpoint.note";
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    } catch (error) {
      say(error instanceof PageError ? error.message : messages.serverError);
    }
  }

  content.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) {
      return;
    }
    if (button.classList.contains("check-button")) {
      onCheck(button);
    } else if (button.dataset.download) {
      onDownload(button);
    }
  });

  if (sessionStorage.getItem(TOKEN_KEY)) {
    load();
  }
})();
