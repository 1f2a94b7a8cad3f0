"""JSON-RPC under the handlers: a message is checked before any handler sees it (issue 18).

pygls 2.1 trusts its client. A method, id or ``jsonrpc`` of the wrong type, or a request with no
``params``, ends in an internal error (-32603) or in no answer at all; every nested JSON object is
offered to its message parser, so a parameter shaped like a message is parsed as one. Requests after
``shutdown`` and notifications sent with an id are never answered, and it keeps a finished future for
every notification. Here the transport hands over a frame's bytes (``receive``) and:

- JSON that does not parse is a -32700 parse error; a message that is not a JSON-RPC request,
  notification or response is a -32600 invalid request (with the id when it has a usable one);
- a request whose parameters do not fit its method is -32602 invalid params; before ``initialize``
  it is -32002, after ``shutdown`` -32600, and so is a second ``initialize`` or a notification's
  method sent as a request. Notifications are never answered: a bad one is logged and dropped;
- lone UTF-16 surrogates in any string (``"\\ud800"``), and bytes that are not UTF-8, become
  U+FFFD, so no text that cannot be encoded reaches the documents, the store or the tokenizer;
- ``didChange`` ranges outside the document, or inside a character, are clamped (translate.py);
- an answer whose id is not one of our own requests in progress is dropped (pygls files the
  client's requests and ours in one table);
- a command's arguments are converted by pygls to its handler's annotations (:data:`SuggestionId`
  through :func:`converter`); one that does not fit is -32602 with what the command takes.

So an internal error left is a handler's bug.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Generator
from concurrent.futures import Future
from typing import Any, NewType
from urllib.parse import unquote

import attrs
import cattrs
from cattrs import transform_error
from cattrs.errors import BaseValidationError
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol, default_converter
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage, MsgId
from pygls.protocol.language_server import lsp_method

from hotfix_server import translate

log = logging.getLogger(__name__)

# A JSON text that may hold a lone surrogate: it has a \uD800-\uDFFF escape.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
MESSAGE_CHARS = 500  # an error message quotes at most this much of what was wrong


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (and split pairs joined)."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean(value: Any) -> Any:
    """A parsed JSON value with every string (keys too) passed through :func:`clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    return value


# Notifications naming a request or a progress by its id: a key into pygls's tables.
_KEYED = {types.CANCEL_REQUEST: "id", types.WINDOW_WORK_DONE_PROGRESS_CANCEL: "token"}


def _usable_id(value: Any) -> bool:
    """LSP's ids are integers or strings (JSON-RPC's null and fractions are refused)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _takes_id(message_type: type) -> bool:
    """Whether lsprotocol's message type is a request (it has an id) rather than a notification."""
    return attrs.has(message_type) and "id" in attrs.fields_dict(message_type)


def _invalid(exc: Exception) -> str:
    """What did not fit, in a line: cattrs's own paths when it has them."""
    if isinstance(exc, BaseValidationError):
        text = "; ".join(transform_error(exc, path="$"))
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:MESSAGE_CHARS]


# A command argument naming a suggestion (hotfix.accept, hotfix.reject).
SuggestionId = NewType("SuggestionId", str)


def _suggestion_id(value: Any, _: Any) -> SuggestionId:
    # cattrs would make a string of anything (str(5), str(None)), and accept an id nobody showed.
    if isinstance(value, str) and value:
        return SuggestionId(value)
    raise ValueError(f"not a suggestion id: {value!r}"[:MESSAGE_CHARS])


def converter() -> cattrs.Converter:
    """pygls's converter, which also reads our commands' typed arguments."""
    result = default_converter()
    result.register_structure_hook(SuggestionId, _suggestion_id)
    return result


class HotfixProtocol(LanguageServerProtocol):
    """pygls's LSP protocol behind a gate that answers every request with the right error code.

    It reads pygls's private state where pygls has no public hook: ``_workspace`` (None before
    ``initialize``; the public ``workspace`` raises instead), ``_shutdown``, the request bookkeeping
    (``_request_futures``, ``_result_types``) and the senders (``_send_response``, ``_send_data``,
    ``_execute_handler``). Its converter is the public ``fm.converter``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._initialized_seen = False

    @property
    def shut_down(self) -> bool:
        """Whether ``shutdown`` was received (an ``exit`` after it is a clean one)."""
        return self._shutdown  # pygls keeps this private, with no public accessor

    # From the transport ------------------------------------------------------------------------

    def receive(self, body: bytes) -> None:
        """Handle one frame's body. Only ``exit`` (SystemExit) gets out of here."""
        try:
            # LSP's bodies are UTF-8; json.loads would also take UTF-16 and encoded surrogates.
            data = json.loads(body.decode("utf-8", "replace"))
        except (ValueError, RecursionError) as exc:  # also a 5000-digit number
            self.refuse(None, JsonRpcParseError(f"Parse error: {str(exc)[:MESSAGE_CHARS]}"))
            return
        try:
            if _SURROGATE_ESCAPE.search(body) is not None:
                data = clean(data)
            self._dispatch(data)
        except RecursionError:
            self.refuse(None, JsonRpcInvalidRequest("Invalid request: nested too deeply"))
        except Exception:  # a bug here must not end the session
            log.exception("could not handle a message")

    def refuse(self, msg_id: MsgId | None, error: JsonRpcException) -> None:
        """Answer ``msg_id`` (None: JSON-RPC's null, the id could not be read) with ``error``."""
        log.warning(
            "answered %s with %d: %s", "a message" if msg_id is None else msg_id, error.code, error.message
        )
        if msg_id is not None:
            self._send_response(msg_id, error=error.to_response_error())
        else:  # lsprotocol would leave out the null id
            self._send_data(
                {"jsonrpc": "2.0", "id": None, "error": {"code": error.code, "message": error.message}}
            )

    def _dispatch(self, data: Any) -> None:
        if not isinstance(data, dict):
            batch = " (LSP has no batches)" if isinstance(data, list) else ""
            self.refuse(None, JsonRpcInvalidRequest(f"Invalid request: a message is a JSON object{batch}"))
            return
        msg_id = data.get("id")
        reply_to = msg_id if _usable_id(msg_id) else None
        if data.get("jsonrpc") != self.VERSION:
            self.refuse(reply_to, JsonRpcInvalidRequest('Invalid request: "jsonrpc" must be "2.0"'))
        elif "id" in data and reply_to is None:
            self.refuse(None, JsonRpcInvalidRequest("Invalid request: an id is an integer or a string"))
        elif "method" in data:
            method = data["method"]
            if not isinstance(method, str):
                self.refuse(reply_to, JsonRpcInvalidRequest("Invalid request: the method must be a string"))
            elif reply_to is not None:
                self._request(reply_to, method, data.get("params"))
            else:
                self._notification(method, data.get("params"))
        elif reply_to is not None and ("result" in data or "error" in data):
            self._response(reply_to, data)
        else:
            self.refuse(reply_to, JsonRpcInvalidRequest("Invalid request: no method, result or error"))

    def _request(self, msg_id: MsgId, method: str, params: Any) -> None:
        message_type = self.get_message_type(method)
        if self._shutdown:
            error: JsonRpcException = JsonRpcInvalidRequest(
                f"Invalid request: {method} after shutdown; only exit is accepted now"
            )
        elif method == types.INITIALIZE and self._workspace is not None:
            error = JsonRpcInvalidRequest("Invalid request: initialize was already received")
        elif method != types.INITIALIZE and self._workspace is None:
            error = JsonRpcServerNotInitialized(f"{method} before initialize")
        elif message_type is not None and not _takes_id(message_type):
            error = JsonRpcInvalidRequest(f"Invalid request: {method} is a notification; it takes no id")
        else:
            envelope = {"jsonrpc": self.VERSION, "id": msg_id, "method": method, "params": params}
            try:
                message = (
                    self.fm.converter.structure(envelope, message_type)
                    if message_type is not None
                    else JsonRPCRequestMessage(id=msg_id, method=method, jsonrpc=self.VERSION, params=params)
                )
            except Exception as exc:
                error = JsonRpcInvalidParams(f"Invalid params for {method}: {_invalid(exc)}")
            else:
                self.handle_message(message)
                return
        self.refuse(msg_id, error)

    def _notification(self, method: str, params: Any) -> None:
        problem = None
        message_type = self.get_message_type(method)
        if method == types.EXIT:
            pass
        elif self._workspace is None:
            problem = "before initialize"
        elif self._shutdown:
            problem = "after shutdown"
        elif method == types.INITIALIZED and self._initialized_seen:
            problem = "a second time"
        elif message_type is not None and _takes_id(message_type):
            problem = "without an id: it is a request"
        elif method in _KEYED and not _usable_id(
            params.get(_KEYED[method]) if isinstance(params, dict) else None
        ):
            problem = f"with an invalid {_KEYED[method]}"  # lsprotocol lets any JSON value through
        if problem is None:
            envelope = {"jsonrpc": self.VERSION, "method": method, "params": params}
            try:
                message = (
                    self.fm.converter.structure(envelope, message_type)
                    if message_type is not None
                    else JsonRPCNotification(method=method, jsonrpc=self.VERSION, params=params)
                )
            except Exception as exc:
                problem = f"with invalid params: {_invalid(exc)}"
            else:
                self._initialized_seen |= method == types.INITIALIZED
                self.handle_message(message)
                return
        log.warning("dropped the notification %s %s", method[:100], problem)

    def _response(self, msg_id: MsgId, data: dict[str, Any]) -> None:
        """A client's answer to one of our requests; one that does not parse fails that request.

        pygls files the client's requests in progress and ours under the same ids: an answer with the
        id of one of the client's own requests would be taken for its result.
        """
        if msg_id not in self._result_types:
            log.warning("dropped an answer to %s, which is not a request of ours in progress", msg_id)
            return
        try:
            message = self.structure_message(data)
        except Exception as exc:
            future = self._request_futures.pop(msg_id, None)
            log.warning("the client's answer to %s does not parse: %s", msg_id, exc)
            if future is not None and not future.done():
                future.set_exception(JsonRpcInvalidParams(f"the client's answer does not parse: {exc}"))
            return
        self._result_types.pop(msg_id, None)  # pygls keeps it after an error answer
        self.handle_message(message)

    # pygls's bookkeeping -----------------------------------------------------------------------

    def _execute_handler(
        self,
        msg_id: MsgId,
        handler: Callable[..., Any],
        callback: Callable[[Future[Any]], None],
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Forget a handler's future once it is done.

        pygls files the future of every async or generator handler under its message id, and only a
        request's answer takes it out again: a notification's future (every didOpen, didChange and
        didClose: pygls's own handlers for them are generators) stayed for good.
        """
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        future = self._request_futures.get(msg_id)
        if future is None:
            return
        if future.done():
            del self._request_futures[msg_id]
        else:
            future.add_done_callback(lambda done: self._forget(msg_id, done))

    def _forget(self, msg_id: MsgId, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls's, cancelling from a copy: a cancelled future's callbacks take it out of the dict."""
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True
        return None

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(self, params: types.ExecuteCommandParams) -> Generator[Any, Any, Any]:
        """pygls's, which converts the arguments to the handler's annotations, with two changes: no
        ``arguments`` are an empty list (pygls would call the handler without its parameters: an
        internal error), and an argument that does not fit says what the command takes."""
        if params.arguments is None:
            params = attrs.evolve(params, arguments=[])
        try:
            return (yield from super().lsp_workspace__execute_command(params))
        except JsonRpcInvalidParams as exc:  # raised before the handler runs: its own errors go elsewhere
            if params.command not in translate.COMMAND_ARGUMENTS:
                raise
            why = exc.__context__ or exc.message  # what pygls wrapped
            raise JsonRpcInvalidParams(f"{translate.usage(params.command)} ({why})"[:MESSAGE_CHARS]) from None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """pygls's, with ranges clamped to the document, and changes to unknown documents dropped.

        The handler gets the changes as applied, as the engine's edits, after ``params``: the outcome
        tracker follows the document from them (translate.apply_change).
        """
        document = self.workspace.text_documents.get(unquote(params.text_document.uri))
        if document is None:
            log.warning("didChange for %s, which is not open: ignored", params.text_document.uri[:200])
            return
        edits = [translate.apply_change(document, change) for change in params.content_changes]
        document.version = params.text_document.version
        if (user_handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield user_handler, (params, edits), None
