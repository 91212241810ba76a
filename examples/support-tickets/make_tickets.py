#!/usr/bin/env python3
"""Generate tickets.jsonl: synthetic support tickets for Crewbook, a fictional B2B SaaS.

Crewbook is a team scheduling and client invoicing app for field-service companies
(cleaning, home care, security, trades...). Customers plan shifts, staff clock in from the
mobile app, approved timesheets become invoices to the customer's own clients, and payroll
is exported. Customers pay Crewbook a per-seat subscription.

Each ticket is composed from:
  * one sub-intent of one label (tables INTENTS below): a core sentence ("say"), a very short
    form ("short", used for one-liners and subject lines) and optional follow-ups ("more");
  * slots filled per ticket (amounts, dates, people, browsers, integrations...);
  * label-neutral context sentences (backstory, unrelated remarks) that deliberately reuse
    vocabulary of every label ("billing", "error", "feature", "login", "invoice"...);
  * a style (one-liner, chat, email, bullet list, long rambling email), a tone (polite,
    neutral, annoyed, furious, urgent) and noise (typos, non-native phrasing, caps, emoji).

Standard library only. Deterministic: the same SEED gives a byte-identical file.

    python3 make_tickets.py            # writes tickets.jsonl next to this script
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

SEED = 13
OUT = Path(__file__).with_name("tickets.jsonl")
LABEL_COUNTS = {"BILLING": 216, "BUG": 234, "HOWTO": 180, "ACCOUNT": 144, "FEATURE": 126}
N_CUSTOMERS = 250

# ---------------------------------------------------------------------------------------
# Sub-intents. In each block: "say:" a core sentence, "short:" a one-liner form,
# "more:" an optional follow-up sentence. {slots} are filled per ticket (see SLOTS).
# Confusers are planted on purpose: invoices and payment pages that are BUGs, "how do I" that
# is ACCOUNT or BILLING, "charge"/"refund" in FEATURE and HOWTO, "login" in HOWTO, and so on.
# ---------------------------------------------------------------------------------------

INTENTS: dict[str, dict[str, str]] = {}

INTENTS["BILLING"] = {
    "double charge": """
say: We were charged twice for {month}: two payments of {amount} went out on {card}.
say: Is this a bug? Our card was debited {amount} two times on {date} for the same subscription.
say: Our bank statement shows two identical {P} transactions of {amount} on {date}. We only have one workspace.
say: Hello, I see two times the payment of {amount} in our bank account for the same month. Please return one of them.
say: Looks like you took the monthly payment twice. Can the second one be reversed?
say: The {month} subscription went out twice, {amount} each time. We only agreed to pay once.
say: Our finance lead says we paid you twice on {date}. Can you look into it and send one back?
say: same amount taken two days in a row from {card}, I assume that's a mistake on your side
short: charged twice this month??
short: double payment on {date}, please reverse one
more: Our bookkeeper spotted it while reconciling the {month} statement.
more: Happy to send a screenshot of the bank statement if that helps.
more: Please confirm which of the two will be returned and when.
""",
    "refund after cancel": """
say: We cancelled on {date} but the renewal of {amount} still went through. We would like that money back.
say: Our subscription renewed for another year even though we told {person} from your team we were leaving. Can you refund it?
say: We closed the {city} branch and no longer need that workspace. Is a refund possible for the months we won't use?
say: I forgot to cancel before the trial rolled into a paid plan. Any chance of getting the {amount} back?
say: We stopped using {P} in {month} and cancelled in the settings, yet another {amount} left our account. We expect that back.
say: Can the last renewal be reversed? We closed the company account the day before it went through.
short: refund pls, we cancelled already
short: want our money back for the renewal
more: We have not logged in or scheduled anything since then.
more: The cancellation confirmation email is dated {date}.
""",
    "price went up": """
say: Why did our monthly amount jump from {amount} to {amount2}? Nobody told us about a price change.
say: The last payment was much higher than usual and our headcount hasn't changed. What happened?
say: We got hit with a bigger charge this month with zero warning. Explain please.
say: Our {plan} subscription used to cost {amount}, now it's {amount2}. Did the price per seat change?
say: Has something changed in what you charge per person? The last debit doesn't match our contract.
say: the monthly amount crept up from {amount} to {amount2} and no one at our company agreed to that
say: Did adding the SMS reminders and the second location change our monthly fee? The last debit was {amount2}.
short: why is this month's payment so high
short: price went up without notice?
more: Our budget for software is fixed for the year so this matters.
more: I checked the team list and we still have {n} active people.
""",
    "vat on our invoice": """
say: The invoices you send us don't show our VAT number {vat}, so our accountant can't reclaim the tax. Can you reissue them?
say: Why are you adding VAT? We are a registered business in {country} and gave you our VAT ID when we signed up.
say: Reverse charge should apply to us but your invoice {inv} includes 20% VAT.
say: Please add our tax ID {vat} to every future invoice from {P}.
say: Our accountant says the tax on your invoices is wrong for an EU business like ours. Can you correct {inv}?
say: We're VAT-registered in {country}; the subscription invoices should not include VAT. Can you credit it?
short: VAT number missing on your invoices
short: you charged us VAT by mistake
more: Our financial year closes at the end of {month}, so we need corrected copies soon.
more: The VAT ID is valid, you can check it in VIES.
""",
    "our invoice details wrong": """
say: Your invoice {inv} still has our old address on it. Could you issue a corrected copy?
say: We need the company name on our subscription invoices changed to {company} Ltd, our legal name changed.
say: Can you put our purchase order number {po} on the next invoice? Finance won't pay without it.
say: The invoice you sent for {month} is addressed to {person}, who left. Please address them to accounts@{domain}.
say: Could the documents you send us for the subscription show our registered office instead of the site address?
say: Finance bounced your last invoice because the PO field was empty. The number is {po}.
short: need PO number on our invoice
short: wrong company address on invoice {inv}
more: Our auditors are strict about this.
more: Please also correct the last two months if possible.
""",
    "receipts": """
say: Could you send me receipts for all our payments in {year}? The accountant needs them for the year-end.
say: I need copies of the last three invoices you sent us, for an audit.
say: Where can I get a receipt for the {amount} payment on {date}? Our expense system requires one.
say: Could receipts go to accounts@{domain} automatically instead of to {person}'s inbox?
say: I need a paid-in-full confirmation for the {date} payment for our grant report.
say: Our auditors want every subscription invoice from {year}. Can you email them over in one go?
say: We changed our finance email to accounts@{domain}. Please send future subscription invoices and receipts there.
short: receipts for {year} please
short: need a receipt for the {date} payment
more: A single PDF is fine, or separate ones, whatever is easier.
more: It's for our tax return so the deadline is close.
""",
    "failed payment": """
say: We got an email saying our payment failed and the workspace will be suspended. The card is fine, can you try again?
say: Payment declined again?? The card works everywhere else.
say: Your system says the last payment didn't go through. We have topped up the account, please retry the charge.
say: We received a 'payment error' notice for {month}. Nothing changed on our side, what is going on with the direct debit?
say: We got a warning that access will be cut because the debit bounced. The money is there now, what do we do?
say: The {month} payment didn't go through because the bank flagged it. It's unblocked now, could you try it again?
short: payment failed, card is valid
short: pls retry our payment, funds are there now
more: We really don't want the team to lose access before the weekend rota goes out.
more: Our bank says they didn't block anything.
""",
    "change payment method": """
say: Our company card expires next month. How do I switch the subscription over to the new card?
say: We would like to pay by bank transfer instead of card from now on. Is that possible for our plan?
say: Please move our subscription payments from {card} to {card2}.
say: Can we pay by SEPA direct debit? Our finance team hates card payments.
say: From next month the subscription should be paid with {card2}, not {card}.
say: We'd like our finance team's card on file instead of my personal one. How do we swap it?
short: how do I update the card you charge
short: switch us to bank transfer please
more: The old card gets cancelled on the 1st.
more: {person} in finance will handle it, just tell us what you need.
""",
    "upgrade cost": """
say: What would it cost to move from {plan} to {plan2} for {n} people?
say: If we upgrade mid-month, are we charged the full month or only the difference?
say: Which plan includes the GPS clock-in feature, and how much more is it per seat than what we pay now?
say: If I add {k} more users next week, what will our monthly bill look like?
say: We're thinking about {plan2}. What would our monthly total be with {n} people on it?
say: Would moving to annual {plan2} be cheaper than what we have now? Rough numbers are fine.
say: Does the {integration} connection cost extra, or is it included in {plan}?
say: Is the mobile app included in our price or is it a paid add-on?
short: how much is {plan2} per user?
short: price of upgrading to {plan2}?
more: We need to get the number approved by our director first.
more: We're growing quickly so we may need more seats soon.
""",
    "downgrade credit": """
say: We want to go down to {plan} at the next renewal. Will we get credit for the rest of the year?
say: Our team shrank to {n} people. Can we reduce what we pay, and from when?
say: If we remove {k} seats now, will the next invoice already be lower or only from next year?
say: We don't use the reporting add-on anymore, can you stop charging us for it?
say: We only need the basic scheduling now. Which cheaper plan fits and what would we save?
say: We'll drop to {m} people after the season. Does what we pay adjust automatically?
short: downgrade to {plan}, what do we pay then
short: can we pay less, fewer staff now
more: Business has been slow since the summer.
more: We'd rather stay with you than cancel, but the cost has to come down.
""",
    "seat charges": """
say: We're being charged for {n} seats but only {m} people actually use {P}.
say: Why do deactivated staff still count towards our bill?
say: The invoice lists {n} users. We archived several leavers in {month}, so that number is wrong.
say: Are seasonal workers who only clock in twice a year charged as full seats?
say: The last invoice counts people who haven't worked for us since {month}. Why are they included?
say: We pay per head, fine, but {n} heads is nowhere near our real team size.
say: The invoice for {month} shows {n} users on {plan}; we removed {k} of them at the start of the month. Please correct the amount.
short: paying for too many seats
short: why {n} seats on the bill? we have {m}
more: That's a difference of a few hundred a year for a company our size.
more: Please credit the difference for the last couple of months.
""",
    "annual vs monthly": """
say: Is there a discount if we switch to yearly payment?
say: Can we move from monthly to annual billing, and what would the total be for {n} seats?
say: We pay yearly but would prefer monthly now. Is that possible halfway through the term?
say: What's the yearly price for {plan} compared to paying month by month?
say: Could we pay for the whole year upfront in {month}? Our budget resets then.
short: discount for paying yearly?
short: switch us to monthly payments
more: Cash flow is tight at the start of the year.
more: If the discount is decent we'll do it this month.
""",
    "charged after trial": """
say: I was charged {amount} right after the trial ended. I thought I'd get a reminder first.
say: trial ended and you took money straight away, I did not want to continue
say: We only tested {P} for two weeks and now there's a {amount} payment on our card. Please reverse it.
say: I signed up to try it for a couple of weeks and now there's a {amount} debit. Nobody warned me it would start automatically.
say: The free test period turned into a paid subscription without asking me. I'd like that reversed.
short: charged after trial, didn't want that
short: why was I charged after the free trial
more: Honestly we decided to stay with spreadsheets for now.
more: I never even invited the rest of the team.
""",
    "discount missing": """
say: We were promised a 20% nonprofit discount by {person} from your sales team, but it isn't on the last invoice.
say: The promo code from your webinar wasn't applied to our first payment. Can you credit it?
say: Our agreed price was {amount} per month for the first year, but you've charged the standard rate.
say: Our contract says {amount} per month for two years, the debit was higher. Please fix and credit.
say: We had a charity rate agreed with your sales person {person}, but the last two payments were at full price.
short: our discount isn't applied
short: promised price not honoured on invoice
more: I can forward the email from your sales rep.
more: We signed in {month} so we're still within the first year.
""",
    "subscription currency": """
say: Can you bill us in EUR instead of USD? The conversion fees on every payment add up.
say: We're a UK company, why is our subscription charged in dollars?
say: Is it possible to pay for {P} in {currency}? Our bank charges us for foreign transactions.
say: Our bank adds a fee every time you debit us in dollars. Could the subscription be in {currency}?
say: Can our yearly fee be invoiced in euros? We're based in {country}.
short: can we pay you in {currency}?
short: please bill us in GBP not USD
more: The fees are small but they're on every single payment.
more: Our accountant raised it again this month.
""",
    "cancellation fee": """
say: If we cancel now, do we still have to pay the remaining months of the contract?
say: What happens to the money for the rest of the year if we close the account in {month}?
say: Is there any cancellation fee on the {plan} plan, or do payments just stop?
say: Are we tied into the annual contract, or can we stop paying from next month?
say: If we close down the workspace in {month}, is there anything left to pay?
short: do we pay anything if we cancel early?
short: cancellation fee?
more: We're merging with another company and they use a different system.
more: Nothing against the product, it's a business decision.
""",
    "payment terms": """
say: Could we get net-30 payment terms? Our finance department only pays supplier invoices at month end.
say: Can we receive one invoice per quarter instead of monthly charges?
say: Our procurement needs you to accept payment against invoice rather than automatic card payments.
say: Our policy is to pay suppliers by bank transfer within 30 days of an invoice. Can we set that up with you?
say: Can you send invoices to accounts@{domain} and let us pay them by transfer?
short: net 30 terms possible?
short: quarterly invoicing instead of monthly?
more: We're a public sector contractor so our processes are rigid.
more: It's a requirement from our new finance director.
""",
    "unknown charge": """
say: There's a charge from CREWBOOK*SUB on our statement for {amount} and I don't know which account it's for.
say: We see a {amount} payment to {P} on {date} and as far as I know we only have the free plan.
say: Can you tell me what the {amount} on {date} was for? It doesn't match our usual monthly payment.
say: Someone here spotted a {amount} debit labelled {P} and we have no idea what it is for.
say: What exactly did we pay for on {date}? The amount isn't our normal one.
short: what is this {amount} charge from you?
short: unknown payment to crewbook on {date}
more: I'm the office manager and nobody here remembers signing up for anything extra.
more: The last four digits are {last4}.
""",
    "sms credits cost": """
say: What are these extra SMS charges on our latest invoice? I thought text reminders were included.
say: We got billed {amount} for text messages in {month}. Is there a limit we didn't know about?
say: How much do SMS shift reminders cost on top of the subscription?
say: The latest invoice has a line called 'messaging usage'. What is that and why is it so high?
say: Are text reminders to staff charged separately? Our last payment was {amount2} instead of {amount}.
short: what's the SMS charge on our invoice
short: extra fees for texts??
more: We send a reminder before every shift, so it could add up.
more: Nobody mentioned this when we signed up.
""",
    "seats and users cost": """
say: If we deactivate the seasonal staff over winter, do we stop paying for them?
say: Do managers who only approve timesheets count as paid seats, or only staff who clock in?
say: We're adding a second location with about {n} staff. Roughly what would that add to our monthly payment?
say: Is there a cheaper rate for staff who only use the phone app to clock in?
short: do inactive users cost money?
short: cost of adding {n} staff?
more: We're trying to plan next year's budget.
more: Our director wants the exact figure before approving.
""",
}

INTENTS["BUG"] = {
    "invoice pdf broken": """
say: The Download PDF button on our subscription invoice does nothing. Tried {browser} and {browser2}.
say: When I open invoice {inv} to send to a client, the PDF is blank apart from our logo.
say: Client invoices come out with the totals cut off at the bottom of the page.
say: Downloading any invoice as PDF gives {error}.
say: The invoice PDF for {month} won't download, the spinner just goes forever.
say: Clicking the invoice for {client} opens an empty tab, no document at all.
say: The PDFs of our client invoices show last month's lines instead of this month's.
say: our invoice pages look garbled, half the text overlaps the table
short: invoice pdf wont download
short: invoice PDFs blank since this morning
more: It worked fine last week.
more: Our clients are waiting for their invoices.
""",
    "client invoice totals wrong": """
say: Invoices we create for clients are adding VAT twice: the total for {client} shows {amount2} but it should be {amount}.
say: The invoice total doesn't match the sum of the lines whenever a line has a discount.
say: Client invoices generated from timesheets are charging the client for breaks, even though breaks are unpaid in our settings.
say: The hourly rate on client invoices rounds wrong, {client} got charged a few cents more per line.
say: The discount on the {client} invoice is applied to every line AND to the total, so they were undercharged.
say: Invoices made from the approved hours charge {client} for 9.5 hours when the timesheet says 7.
say: The tax rate I set for client invoices is ignored on every new invoice, they all come out at 0%.
short: invoice totals calculated wrong
short: VAT added twice on client invoices
more: A client noticed before we did, which was embarrassing.
more: We checked the tax settings three times, they're correct.
""",
    "calendar sync": """
say: Shifts stopped syncing to {calendar} on {date}. Nothing new shows up in anyone's calendar.
say: The {calendar} sync creates every shift twice.
say: Cancelled shifts stay in our staff's {calendar} calendars, so people turn up for shifts that don't exist.
say: Calendar sync shows all shifts a day late for staff on {device}.
say: Staff phone calendars still show last month's schedule, nothing new comes through.
say: When I move a shift it stays in the old slot in everyone's {calendar} calendar.
short: calendar sync broken again
short: shifts not showing in {calendar}
more: We disconnected and reconnected it, no difference.
more: About {n} staff are affected.
""",
    "app crash": """
say: The Android app closes as soon as I tap Timesheets. {device}, latest version.
say: The iOS app crashes on launch since the last update.
say: App freezes on the clock-out screen and staff have to force close it, then their hours are lost.
say: Every time a staff member opens a shift with notes the app shuts down.
say: On {device} the app goes black and kicks you back to the home screen when you open a shift.
say: Since updating this week the phone app won't get past the loading logo.
short: app crashes on open
short: mobile app keeps closing
more: Reinstalling didn't help.
more: It happens on {device} and on older phones too.
""",
    "clock-in fails": """
say: Staff clocking in on site get 'You are outside the job area' even when they're standing at the client's door.
say: The clock-in button is greyed out for everyone this morning.
say: Clock-ins are saved with the wrong time, always about {mins} minutes earlier than the real one.
say: Staff clock in, the app says success, but the timesheet stays empty.
say: The app tells staff they're clocked in, but when I look at the day nobody is.
say: Clocking out at 6pm records 6am, so everyone's hours are negative.
short: clock in not working
short: nobody can clock in today
more: We've had to write hours on paper all day.
more: Location permissions are switched on for the app.
""",
    "timezone wrong": """
say: All shifts are showing one hour off since the clocks changed.
say: Shifts created by our {city} manager appear at the wrong time for staff in {city2}.
say: The rota shows 9am but the reminder SMS says 10am.
say: Our {city2} team sees every shift starting two hours early.
say: A night shift from 10pm to 6am shows as two separate shifts on different days.
short: shift times off by an hour
short: wrong times everywhere since clocks changed
more: Our timezone setting is correct, I double-checked.
more: Several people came in an hour early today.
""",
    "page error": """
say: The Reports page gives {error} whenever I pick a date range longer than a month.
say: Getting {error} when saving a shift.
say: Every time I click Publish I get {error}. How do I get past this?
say: Opening the Clients list shows {error} and nothing else.
say: The new shift-swap feature throws {error} when a manager approves a swap.
say: When I try to open the timesheet of one particular cleaner I just get {error}.
say: Approving hours from the dashboard shows {error} and the approval doesn't stick.
short: {error} on the schedule page
short: error when saving shifts
more: I've cleared the cache and tried incognito.
more: I attached a screenshot of the message.
""",
    "slow": """
say: The schedule takes over a minute to load for our {n} staff, and half the time it times out.
say: Everything is super slow today, pages hang and then give a timeout.
say: Exporting a month of timesheets never finishes, it spins until the browser gives up.
say: The web app has become painfully slow since last week's update, even switching tabs takes ages.
say: Publishing the rota used to take a second, now it takes minutes and sometimes never completes.
say: The app takes forever to open the week view, staff are giving up on it.
short: site very slow today
short: timesheets page timing out
more: Our internet is fine, other sites load instantly.
more: It's worst in the morning when everyone is clocking in.
""",
    "notifications not sent": """
say: Staff aren't receiving SMS reminders for tomorrow's shifts although reminders are switched on.
say: Shift swap approvals don't trigger the email anymore.
say: Our Slack channel stopped getting the 'rota published' message.
say: People get the same push notification five or six times.
say: Nobody got told about the changes I made to Saturday's rota, the messages never arrived.
say: We set SMS reminders for 6pm the day before, they arrive at random times or not at all.
say: Staff who request time off get a confirmation, but the request never shows up for me to approve.
short: reminders not being sent
short: no notification emails since {date}
more: We checked the spam folders.
more: Phone numbers are in the right format.
""",
    "export wrong": """
say: The payroll CSV export is missing all overtime hours.
say: The {integration} export sends invoices with the wrong account code even though we set it in settings.
say: Exported timesheets show 0.00 hours for anyone who worked past midnight.
say: The QuickBooks sync duplicated last month's invoices, so the client charges are now in there twice.
say: The hours in the payroll file don't match the approved timesheets, some people are short by a few hours.
say: Our {integration} connection created duplicate contacts for every client.
say: The CSV export of the rota puts every shift in the wrong column since last week.
short: payroll export missing hours
short: {integration} export broken
more: We only noticed when payslips came out wrong.
more: Our accountant had to fix it by hand.
""",
    "login page broken": """
say: The login page just reloads itself after I enter my details, no message. Same for my colleagues on {browser}.
say: The link in the password reset email leads to a 404 page for everyone on our team.
say: Nobody at our company can sign in since this morning, the login screen shows {error}.
say: Sign in with Google returns a blank white page for the whole team.
say: The sign-in screen is stuck loading for all of us since the update, whichever browser we use.
say: Everyone in our office gets bounced back to the start page after entering their password.
say: How do I stop the app logging me out every five minutes? It started after the update and happens to the whole team.
short: login page broken for all of us
short: sign-in page shows {error}
more: It works on mobile data but not on the office wifi, oddly.
more: We tried different browsers and devices.
""",
    "data missing": """
say: Shifts for next week disappeared from the rota after I published.
say: Half of the client notes are gone since yesterday.
say: Approved timesheets from {month} reverted to 'pending' overnight.
say: The job history for {client} is empty but we've worked there for two years.
say: I added holidays for {person} yesterday and today they're not there anymore.
say: All the shifts I built for {month} vanished overnight, the week is empty.
short: shifts disappeared
short: our data is gone from the rota
more: Nobody on our side deleted anything.
more: Can you restore it from a backup?
""",
    "duplicates": """
say: Every time a staff member edits a timesheet it creates a duplicate entry.
say: Recurring shifts set to every two weeks are being created every week.
say: Clients show up twice in the client list after the {integration} sync.
say: Each shift I create appears two times once I refresh.
say: Staff are listed twice in the dropdown so I can't tell which one is right.
say: Copying last week's rota only copies Monday, the rest of the week stays empty.
short: duplicate shifts everywhere
short: timesheets duplicating
more: Cleaning it up by hand takes hours each week.
more: It started around {date}.
""",
    "payment page error": """
say: The page where I update our card keeps throwing {error}, so I can't even pay you.
say: Clicking 'Upgrade plan' shows a blank white page.
say: The Billing tab in settings never finishes loading, it just spins.
say: The subscription page shows {error} when I try to change the number of seats.
say: I tried to add seats from the subscription screen but the Save button does nothing.
say: Your checkout page refuses every card with {error}, we tried three different cards.
short: billing page won't load
short: upgrade button broken
more: I'd like to pay, your page won't let me.
more: Tried on {browser} and {browser2}.
""",
    "client pay link broken": """
say: Clients click 'Pay now' on our invoices and get 'payment link expired' straight away.
say: Card payments from clients are marked as failed in {P} but the money actually arrives in our Stripe account.
say: The Refund button on a client payment gives {error} and nothing is refunded.
say: Invoices paid online by clients still show as unpaid and the reminder emails keep going out to them.
say: Our clients can't complete payment on the invoices you send for us, the page hangs after they enter the card.
say: Payments from clients are recorded twice, so invoices show as overpaid.
short: client pay now links broken
short: paid invoices still show unpaid
more: Two clients have called to complain already.
more: Stripe's dashboard shows everything fine on their end.
""",
    "permissions leak": """
say: Staff with the basic role can see everyone's pay rates, which they definitely shouldn't.
say: A supervisor was able to delete shifts in a location she isn't assigned to.
say: Staff who were archived still get the rota emails and can open the schedule link.
say: A manager can edit timesheets in locations she was explicitly removed from.
say: Regular staff can open the Reports page and see labour costs.
short: staff can see pay rates
short: permissions not working right
more: This is a privacy problem for us.
more: The role settings look correct on our side.
""",
    "search and display": """
say: Search in the client list returns nothing unless I type the exact full name.
say: Dates in the Timesheets tab show as 'NaN/NaN' in Safari.
say: The week view cuts off Sunday on smaller laptop screens, the scrollbar doesn't appear.
say: Staff names with accents show up as weird symbols in the exported reports.
say: The week view shows Monday's shifts under Tuesday.
say: Filtering the rota by location does nothing, it always shows everyone.
short: search not finding anything
short: dates show NaN in timesheets
more: It's been like that for a few days.
more: Works fine in {browser} though.
""",
    "upload fails": """
say: Uploading a photo to a job note fails with 'file too large' even for a 200 KB image.
say: The staff CSV import stops at row 1 with {error}.
say: Attaching a signed form to a shift says uploaded, but the file is never there afterwards.
say: Photos taken in the app never reach the job notes, they just sit with a little clock icon.
say: Our logo upload in settings says done, but invoices still show the default placeholder.
short: uploads failing
short: CSV import error
more: The file opens fine on my computer.
more: We need the photos as proof of work for clients.
""",
    "add user fails": """
say: Adding a user fails with 'email already in use' even though it's a brand-new address.
say: Invited staff click the link in the email and get {error}.
say: The Save button on the new team member form does nothing, no error, no user created.
say: New employees we add don't appear in the rota even though they're in the team list.
say: The new starter form gives {error} when I press save.
short: invite links give an error
short: can't add staff, form doesn't save
more: We have three new starters on Monday.
more: Tried with two different email addresses.
""",
    "account screens misbehave": """
say: 2FA codes sent by text arrive after they've already expired, for everyone in our company.
say: The subscription page says we have 40 seats but we have 32 users. We're charged correctly, it's just the display that's wrong.
say: Changing my profile email shows 'saved' but after a refresh the old address is back.
say: The 'Remove user' button greys out the person but they still appear in the rota and can still clock in.
say: The language setting in my profile switches back to English every time I log in.
short: 2FA codes arriving expired
short: profile changes don't save
more: It's reproducible every time.
more: Others on the team see the same thing.
""",
}

INTENTS["FEATURE"] = {
    "new integration": """
say: Any plans to integrate with {newint}? We'd drop our manual exports overnight.
say: Would love a {newint} integration, we use it for everything else.
say: Please build a connector for {newint}, right now we copy the hours over by hand every week.
say: Is a {newint} integration on your roadmap?
say: We keep our staff records in {newint}. Connecting the two would save us a lot of double entry.
say: Our accountant moved us to {newint}. Do you think you'll connect to it at some point?
say: Is it possible to sync with {newint}? We couldn't find it in the list.
short: {newint} integration please
short: any {newint} connection planned?
more: Several other companies in our network would use it too.
more: Happy to beta test.
""",
    "multi currency clients": """
say: Could you add the option to charge clients in EUR? Some of our customers are across the border in {country}.
say: We need to invoice clients in more than one currency, right now everything is in our home currency.
say: Would it be possible to set a currency per client? We charge a few clients in {currency}.
say: Half our work is for clients in {country} and they want to be billed in {currency}. Right now {P} only lets us use one currency.
say: Is it possible to charge a client in a different currency than the company default?
say: We'd like different tax rates per line on the same client invoice, right now it's one rate per invoice.
short: multi-currency invoices for clients please
short: let us charge clients in {currency}
more: At the moment we make those invoices in Word, which defeats the point.
more: Exchange rates could be entered manually, that's fine.
""",
    "excel export": """
say: Please add an Excel export for the reports, CSV breaks our accented names.
say: Could timesheet exports include a column for the client's cost centre?
say: We'd like a DATEV export format for our German payroll provider.
say: Can the payroll export be scheduled to email itself to our accountant every Friday?
say: Our payroll bureau only takes a fixed-width file. Any chance of that format?
say: Is it possible to get the reports as a PDF for printing? Only CSV is offered now.
short: xlsx export please
short: scheduled export would be great
more: Our accountant reformats the file every single week.
more: Other tools we use already do this.
""",
    "dark mode": """
say: Dark mode please, our night-shift supervisors are blinded by the white screens.
say: Any chance of a dark theme for the mobile app?
say: The app is very bright at 5am when the early team checks their shifts. A darker theme would be kind on the eyes.
say: Is a night theme planned for the web version?
short: dark mode 🙏
short: please add a dark theme
more: Small thing but it would make a difference.
""",
    "bulk edit": """
say: It would save hours if we could edit many shifts at once, for example change the location of 20 shifts in one go.
say: Please let us select several timesheets and approve them together.
say: We really need a way to delete a whole week of shifts with one click.
say: When a client moves site I have to open every single shift to update the address. Changing them all together would be a lifesaver.
say: Is it possible to reassign a whole week of one employee's shifts to another person in one action?
say: Is it possible to copy a single day instead of the whole week? Only whole weeks can be copied now.
short: bulk edit for shifts please
short: select all + approve would be great
more: Right now I click through each one separately.
more: With {n} staff that's a lot of clicking.
""",
    "invoice custom fields": """
say: Let us add custom fields to the client invoice template, like a job reference or site code.
say: Could you add a separate billing address for clients, different from the site address?
say: We'd love to be able to add our own terms and conditions as a second page on invoices.
say: Please make it possible to hide the hourly breakdown on invoices and show only the total.
say: Our clients want their cost centre printed on every invoice, and there's nowhere to put it.
say: Is it possible to add a second logo to the invoice template for our franchise brand?
short: custom fields on invoices please
short: separate billing address for clients
more: Our bigger clients insist on their reference being on every invoice.
more: We currently edit every PDF by hand before sending.
""",
    "api webhooks": """
say: Do you have plans for webhooks when a shift is published or changed?
say: Please open up a public API so our developer can pull timesheets into our own dashboard.
say: It would be great to have an API endpoint for creating clients from our CRM.
say: We want our own dashboard to show live clock-ins. Is there a way for developers to get that data out?
say: Our IT team asked whether {P} has an API. If not, please consider one.
short: public API?
short: webhooks would be amazing
more: We have an in-house developer who could build the rest.
""",
    "saml sso": """
say: Could you support SAML login through {idp}? Right now only Google and Microsoft sign-in work for us.
say: Please add {idp} as a login option, our IT policy requires it for all tools.
say: Would you consider SCIM provisioning so users are created automatically from {idp}?
say: Our security team only approves tools that sign in through {idp}. Is that coming?
say: Is it possible to connect {P} to our {idp} directory so leavers lose access automatically?
short: {idp} SSO support please
short: SAML login option?
more: It's the one thing our IT department keeps asking about.
more: We'd happily move to a higher plan for it.
""",
    "late fees recurring": """
say: Would be great if {P} could automatically charge a late fee on overdue client invoices.
say: We bill several clients the same amount every month, please add recurring invoices.
say: Could you add automatic payment reminders that escalate, like a friendly one at 7 days and a firmer one at 30?
say: Let us refund a client's card payment straight from the invoice instead of logging into Stripe.
say: Our maintenance contracts are billed monthly with the same lines. Having {P} create those invoices by itself would be brilliant.
say: Is it possible to add interest automatically to client invoices that are 30 days overdue?
short: recurring invoices for clients please
short: automatic late fees would help
more: Chasing payments is half my week.
more: It would make the invoicing side complete for us.
""",
    "offline mode": """
say: Can the mobile app work offline? Many of our sites have no signal and staff can't clock in.
say: We'd like the app to store clock-ins offline and upload them later when there's signal.
say: Half our staff work in basements with no reception. The app is useless there; could it keep working without internet?
short: offline mode for the app please
short: need clock-in without signal
more: Basements and rural sites are the problem.
""",
    "languages": """
say: Please add a {lang} version of the app, half of our cleaners don't read English well.
say: Could the staff app be translated into {lang}?
say: Would you consider letting each staff member choose their own language?
say: Our carers are mostly from abroad. Having the staff app in {lang} would help them a lot.
short: {lang} translation please
short: app in {lang}?
more: We'd be glad to help check translations.
""",
    "auto scheduling": """
say: It would be amazing if {P} could suggest a rota automatically based on availability and contracted hours.
say: Could you add a way to fill open shifts automatically with whoever is available and cheapest?
say: Please add a warning when someone is scheduled over their contracted hours.
say: I'd love {P} to build next week's rota on its own from availability, then I just tweak it.
say: Is it possible to flag double bookings before I publish the rota? At the moment nothing warns me.
short: auto-scheduling would be great
short: warn when over contracted hours?
more: Building the rota takes me a full day every week.
""",
    "audit log": """
say: We need an audit log showing who changed which shift and when.
say: Could you keep a history of edits on timesheets? Right now we can't see who changed the hours.
say: When a shift is deleted nobody knows who did it. Could you record changes somewhere?
short: audit log please
short: change history on timesheets?
more: It came up in a dispute with an employee.
""",
    "map and routes": """
say: A map view of today's jobs would really help our dispatchers.
say: Could the app plan the best route between a cleaner's jobs for the day?
say: Please show travel time between jobs when building the schedule.
say: Showing jobs on a map would make planning routes much easier for our drivers.
short: map view for jobs please
short: route planning would be great
more: Our staff drive between {n} sites a day on average.
""",
    "signature capture": """
say: Could clients sign on the staff member's phone when a job is done? We need proof of completion.
say: We'd like a checklist that staff tick off at each job before they can clock out.
say: Clients keep disputing hours. A sign-off on the phone at the end of each visit would settle that.
short: client signature on job completion?
short: job checklists please
more: Our insurance asked us for this.
""",
    "ui change requests": """
say: Please bring back the old compact calendar view, the new one wastes so much space.
say: Let weeks start on Sunday in the rota, our pay week runs Sunday to Saturday.
say: Could the colours of shifts be customised per client instead of per role?
say: Please let us change the wording of the SMS reminders, the default text is too formal for our staff.
say: Can you add a setting so managers get one daily summary email instead of an email per clock-in?
say: The new menu hides Timesheets under 'More'. Please put it back on the main bar.
say: The rota font is tiny on big monitors, a zoom or compact/large toggle would help.
say: I wish the week view showed total hours per person at the end of each row.
say: Please let staff request half-day leave, at the moment only full days are possible.
say: Could managers approve time off straight from the Slack message?
short: let us customise shift colours
short: week starting Sunday please
more: It sounds minor but we look at that screen all day.
more: Several of our managers asked me to pass this on.
""",
    "open shift marketplace": """
say: Could staff pick up open shifts themselves from a list, first come first served?
say: We'd like staff from different locations to be able to see and claim each other's open shifts.
say: When someone calls in sick I phone around for cover. Letting staff grab free shifts in the app would fix that.
short: let staff claim open shifts
short: shift marketplace?
more: It would save a lot of phone calls on Sunday evenings.
""",
    "login options": """
say: Could staff clock in on the kiosk tablet with a 4-digit PIN instead of their full login?
say: Please add a 'remember me for 30 days' option on the sign-in page, staff hate logging in every day.
say: Would you consider passkeys or fingerprint login for the phone app?
say: Approved time off should also appear in the synced calendars, right now only shifts do.
say: Could there be a read-only login for our clients so they can see the visits booked at their site?
say: It would help if the second login step could be done by email as well as with the authenticator app.
short: PIN login for kiosk?
short: remember me option on login please
more: Our staff share one tablet at the depot.
more: It's the most common complaint I hear from the team.
""",
}

INTENTS["ACCOUNT"] = {
    "password reset": """
say: I forgot my password and the reset email goes to my old work address, which I can't access anymore.
say: I reset my password twice today and it still says the password is incorrect. Can you reset it for me?
say: How do I reset my password? I haven't logged in since {month}.
say: I need my password reset, I'm the only admin and I can't get in.
say: I can't remember the password for {my_email} and the reset message never arrives. Could you help me get back in?
say: Need a new password set up for me, the old one isn't accepted and I'm the owner.
short: forgot password, can't get in
short: password reset please
more: My username is {my_email}.
more: I'd like to get this sorted before the rota is due.
""",
    "locked out": """
say: My account is locked after too many attempts. Can you unlock it?
say: I've been locked out since this morning, it says 'account temporarily locked'.
say: One of our supervisors typed the wrong password a few times and now she can't get back in.
say: It says my user is blocked for security reasons. I just mistyped a few times, please unblock me.
say: Please unlock {email}, they tried too many times this morning.
short: account locked, please unlock
short: locked out of my account
more: I'm sure I'm using the right password now.
more: They need to approve timesheets today.
""",
    "2fa lost": """
say: I got a new phone and lost my authenticator app. Now I can't get past the two-factor step.
say: My 2FA codes are rejected, I think it's still linked to my old phone. Can you reset it?
say: I lost the backup codes and my phone was stolen. How do I get back into my account?
say: The verification codes go to my old number, which I don't have anymore. Can you update it so I can get in?
say: My phone died and the authenticator went with it. What do you need from me to turn the code check off?
say: I'm moving to a new phone. How do I sign in there without getting stuck on the 2FA step?
short: lost 2FA phone
short: need 2fa reset
more: I can verify my identity however you need.
more: The old phone number ended in {last4}.
""",
    "enforce 2fa": """
say: We want to make two-factor authentication mandatory for all managers. Can you switch that on for our workspace?
say: How do I require 2FA for everyone with admin rights?
say: Can you turn off 2FA for our kiosk tablet user? It's shared at reception.
say: Could you force everyone on our team to set up the extra login code? Our insurer requires it.
short: make 2FA mandatory for admins
short: enforce 2fa for our team please
more: Our insurer asked for it.
""",
    "sso access": """
say: We moved to Google Workspace sign-in and now two managers can't log in with their new addresses.
say: Since we switched on Microsoft sign-in, I get 'no account found for this email'.
say: Please disconnect Google sign-in from my account, I want to use a normal password again.
say: I normally use the 'Continue with Microsoft' button but it now says my organisation isn't linked.
say: After our IT moved us to Google accounts, my old password and the Google button both fail.
short: can't sign in with Microsoft anymore
short: SSO not letting me in
more: My email is {my_email}.
more: Our domain is {domain}.
""",
    "change email": """
say: Please change my login email from {old_email} to {my_email}.
say: Our company changed domain, can all our users move from @{old_domain} to @{domain}?
say: How do I change the email address I sign in with?
say: I'm moving from my personal Gmail to {my_email}. Can my user be switched over without losing my history?
say: Our domain changed from {old_domain} to {domain}. Can you update the addresses we use to sign in?
short: change my login email please
short: update email to {my_email}
more: The old mailbox will be closed at the end of the month.
more: Same person, just a new address.
""",
    "add user": """
say: Please add {person} ({email}) as an admin to our workspace.
say: Can you give our new office manager access? Their email is {email}.
say: please add user {email}, they need to see the rota
say: Our bookkeeper needs access to the workspace, but only to the invoicing side, not schedules.
say: Could you set up {email} with the same rights as me? They're our new area manager.
say: Need a new login for {person}, they'll be doing the scheduling from next week.
say: I'd like to add user {person} to the account, how do I do that? I'm not the owner.
short: please add {person} as a manager
short: new user access for {email}
more: They start on Monday.
more: Same permissions as {person2}, please.
""",
    "remove user": """
say: {person} left the company yesterday, please remove their access immediately.
say: Please take away admin rights from {person}, they moved to another department.
say: Remove these two users please: {email} and {email2}. We don't want them logging in anymore.
say: {person} has been dismissed. Make sure they can't get into anything from today.
say: Can you revoke the login of our former supervisor {email}?
say: Our contract with a temp agency ended; please cut off login access for their {k} workers.
short: remove {person}'s access asap
short: please deactivate {email}
more: It's a bit sensitive, so the sooner the better.
more: They still have the app on their phone.
""",
    "change role": """
say: How do I make {person} an admin?
say: Can you give {person} permission to approve timesheets? Right now they only see their own shifts.
say: I need to downgrade {person} from owner to a normal manager role.
say: {person} should only see their own location, not the whole company. Can you limit what they can open?
say: Please give {person} the same rights as {person2}; {person} is covering while {person2} is on leave.
say: Can you make sure {person} can no longer see invoices or payment details? They should keep their scheduling access.
short: make {person} admin please
short: change {person}'s permissions
more: I'm the account owner, {first}.
""",
    "ownership transfer": """
say: I'm leaving the company at the end of {month}. Please transfer ownership of the workspace to {person}.
say: The account owner left and nobody can reach the owner mailbox. How do we regain admin control?
say: Please make {email} the account owner, I'm stepping back from operations.
say: The business has been sold. The new owner {person} needs to become the main account holder.
say: Who do I talk to about making {person} the primary owner? I'm the current one and I'm happy to confirm.
short: transfer account ownership to {person}
short: need to change account owner
more: {person} is cc'd and can confirm.
more: I'm happy to do a video call to verify.
""",
    "delete account": """
say: Please delete our account and all data under GDPR.
say: We'd like our workspace closed and every personal record of our staff erased.
say: Please remove my personal account, I no longer work for {company}.
say: We've stopped trading. Please erase our company and staff data and confirm when done.
say: One of our ex-employees asked for her data to be removed. Can you wipe her profile completely?
short: delete my account please
short: close and erase our workspace
more: Please confirm in writing once it's done.
more: We've already exported what we need.
""",
    "merge workspaces": """
say: We accidentally created two workspaces, can you merge them into one?
say: My colleague signed up separately with {email}, can you move them into our company account?
say: I have two logins with different emails, can they become one?
say: Our two branches each set up their own company in {P}. We'd like to bring them under one roof.
short: merge our two accounts
short: two workspaces by mistake
more: The one to keep is the older one.
""",
    "profile name": """
say: My name changed after I got married, please update it on my profile.
say: The account is still registered under our old trading name, can you update it to {company}?
say: My profile shows my maiden name, can it be changed to {first} {last}?
short: update my name on my profile
short: change our account name
more: My login email stays the same.
""",
    "invite expired": """
say: The invite link I got expired before I could join. Can you send a new one?
say: I was invited by {person} but the link says the invitation is no longer valid.
say: Please resend the invite to {email}, it went to spam and has expired.
say: {person} invited me a while ago but when I click the link it says it's too old. Could you send another?
short: invite expired, resend pls
short: invitation link not valid anymore
more: I'm a new supervisor starting this week.
""",
    "suspicious sign-in": """
say: I'm travelling in {country} and it keeps blocking my sign-in as suspicious.
say: I got a 'new sign-in from an unknown device' email and it wasn't me. Can you check my account?
say: Can you log out all my sessions? I left myself logged in on a client's computer.
say: I got a notice about a sign-in from {country} and I've never been there. Please secure my account.
say: Can you end every active session on my user? I think someone knows my password.
short: sign-in blocked abroad
short: someone else logged into my account?
more: I'd like to change my password too.
more: I'm back in the office on {weekday}.
""",
    "shared login": """
say: Can two supervisors share one login, or does each need their own account?
say: We want a single shared account for the reception tablet where staff clock in. How do we set that up?
say: Is it allowed for our three coordinators to use a single user between them?
short: can we share one login?
short: shared account for the kiosk
more: We'd rather not create a new user every season.
""",
    "deactivated by mistake": """
say: Our previous admin deactivated my user by mistake. Can you reactivate it?
say: My account says 'deactivated, contact your administrator', but I am the administrator.
say: I was marked as a leaver in {P} by accident and now I'm shut out. Please switch me back on.
short: my user got deactivated
short: reactivate my account please
more: I still have the same email.
""",
}

INTENTS["HOWTO"] = {
    "copy week": """
say: How do I copy last week's rota to next week?
say: Is there a feature to reuse a week of shifts instead of creating them again?
say: I'm rebuilding the same schedule every Monday, there must be a faster way? Where's the copy option?
say: Building the same week over and over is driving me mad. Surely I can duplicate it somehow?
say: I can't find a way to repeat this week's schedule next week, what am I missing?
short: how to copy a week of shifts
short: copy rota to next week?
more: Most weeks are identical for us.
more: I looked under Schedule but couldn't see it.
""",
    "vat on client invoices": """
say: How do I add VAT to the invoices I send to my clients?
say: Where do I set the tax rate for client invoices? Some of our clients need 20% and some 0%.
say: How do I show our company VAT number on the invoices that go out to customers?
say: Our clients need to see tax on their invoices. What's the setting for that?
say: Some of our customers are tax-exempt. Can I turn off VAT just for them?
say: How do I change the currency shown on client invoices for the whole company?
short: how to add VAT on client invoices
short: where do I set tax rates for invoices
more: We just registered for VAT this month.
more: The invoices currently show no tax at all.
""",
    "invoice from timesheets": """
say: Is there a way to turn approved timesheets into an invoice for the client?
say: How do I bill a client for the hours worked last month without typing every line?
say: Can I create one invoice per client from all of last week's shifts?
say: Our clients get billed for the hours we work for them. I'm told {P} can do this from timesheets, but I can't figure out where.
say: What's the quickest way to invoice {client} for everything we did in {month}?
short: timesheets to invoice, how?
short: how to invoice hours worked
more: Up to now we've been doing it in a spreadsheet.
""",
    "payroll export": """
say: Where do I find the payroll export?
say: How do I get the hours for payroll out of {P} for our accountant?
say: Our payroll person wants a file with everyone's hours for {month}. How do I make that?
say: I can't find where to get the hours file for payroll. Could you point me to it?
say: Is it possible to download everyone's hours for {month} in one file?
say: How do I export the rota as a CSV? Our payroll bureau asked for it.
short: where is the payroll export
short: how to export hours for payroll
more: The accountant needs it by the 25th.
""",
    "after login find": """
say: After I log in I only see my own shifts. Where's the view with the whole team?
say: When I log in on the app it opens on the calendar, how do I get to the timesheets?
say: I logged in as the manager but can't find where to approve hours, where is it?
say: I log in every morning and can never find the approvals screen without clicking around for ages. Where does it live?
say: Once I'm logged in on the tablet, where do staff see who's on shift today?
short: where's the team view after login
short: logged in, can't find timesheets
more: I'm new to the manager role.
more: I'm sure it's obvious, I just can't see it.
""",
    "time off": """
say: Where do I approve holiday requests from staff?
say: How do staff ask for time off in the app?
say: How can I see who is on leave next month before I build the rota?
say: Staff keep texting me their holiday dates. Is there somewhere in the app they can put them in?
say: Where can I see all leave requests in one list?
say: Someone asked for a day off but I want to refuse it. Where is the reject button?
short: where to approve time off
short: how do staff request holidays
more: We've been doing it by text message so far.
""",
    "shift swap": """
say: How can my staff swap shifts between themselves?
say: Is it possible for a cleaner to give away a shift to a colleague and I just approve it?
say: Two of my staff want to trade Saturday shifts. What do they need to do in the app?
short: how do shift swaps work
short: can staff swap shifts?
more: I'd like to stay in control of who works where.
""",
    "recurring shift": """
say: How do I set up a shift that repeats every Tuesday?
say: We have a client visit every other Thursday. Can I make that repeat automatically?
say: Is it possible to create a weekly shift that just keeps going until I stop it?
short: how to make a repeating shift
short: recurring shifts how?
more: It's for a long-term contract.
""",
    "logo and layout": """
say: How do I put our logo on client invoices?
say: Where can I change the colours and footer text on the invoices we send out?
say: How do I add our bank details to the bottom of client invoices?
say: Our invoices to clients still have the plain default look. Is it possible to brand them?
short: how to add logo to invoices
short: change invoice footer where?
more: We just had a new logo designed.
""",
    "connect integration": """
say: How do I connect {integration}?
say: We use {integration}. Where do I link it to {P}?
say: I can't find where to set up the {integration} connection, can you point me to it?
say: Is it possible to send our invoices to {integration} automatically? Your website says you work with it.
say: Our accountant wants the data in {integration}. What do I need to click to link them?
say: Where do I set up the Slack notifications you mention on the website?
short: how to connect {integration}
short: where's the {integration} setting
more: Our accountant said you support it.
more: I'm not very technical, step-by-step would be great.
""",
    "reports": """
say: How do I see total hours per client for last month?
say: Is there a report that shows labour cost per location?
say: Where can I see overtime for each staff member?
say: My boss wants labour cost by client for {month}. Is it possible to get that out of {P}?
say: I can't find where to see how many hours each person did last week.
short: hours per client report?
short: where are the reports
more: I need it for a meeting with the owner tomorrow.
""",
    "geofence": """
say: How do I set the clock-in radius for a site?
say: Can I restrict clock-in so staff can only do it when they're at the client's address?
say: Is it possible to stop people clocking in from home? I read something about a radius.
short: how to set clock-in radius
short: location check for clock in?
more: Some staff have been clocking in from home.
""",
    "import staff": """
say: Can I import our staff list from a spreadsheet instead of typing everyone in?
say: How do I bring our {n} employees over from our old system?
say: I have {n} staff in a spreadsheet. Is it possible to load them all at once?
short: import staff from excel?
short: bulk import employees how
more: I have it as an Excel file.
""",
    "calendar setup": """
say: How do I get my shifts into my {calendar} calendar?
say: Can staff see their shifts in their phone calendar? How do they turn it on?
say: Is it possible for my team to have their shifts show up in their own calendars?
short: shifts in my calendar how
short: how to turn on calendar sync
more: Most of our staff use iPhones.
""",
    "overtime rules": """
say: Where do I set overtime to start after 40 hours a week?
say: How do I make Sunday shifts pay time and a half in the timesheets?
say: How do I add unpaid 30-minute breaks to shifts longer than six hours?
say: Is it possible to have bank holiday shifts count at double rate automatically?
say: I can't find where breaks are configured. Staff on long shifts get 30 minutes unpaid.
short: overtime settings where?
short: how to add unpaid breaks
more: Our contracts changed this year.
""",
    "client payments": """
say: How do I let clients pay an invoice by card online?
say: How do I charge a client a call-out fee on top of the hours?
say: A client paid us in cash. How do I mark the invoice as paid?
say: We overcharged a client last month. How do I issue a credit note or record a refund to them?
say: Is it possible to add a 'pay by card' button to our invoices? I believe you work with Stripe.
say: A client was double-billed by us. What's the right way to refund them in {P}?
say: How do I charge {client} for parking on top of the visit?
say: Where do I see which invoices a client hasn't paid yet?
short: how do clients pay online
short: mark invoice paid, how?
more: We use Stripe already for our shop.
more: The client is {client}.
""",
    "quotes": """
say: How do I turn a quote into an invoice once the client accepts it?
say: Can I send a quote to a client from {P} before booking the work?
say: Is it possible to send a price estimate to a new client first and only invoice later?
short: quote to invoice how
short: how to send a quote
more: We do a lot of one-off deep cleans.
""",
    "notification settings": """
say: How can I stop getting an email every time someone clocks in?
say: How do I turn on SMS reminders for staff the night before a shift?
say: Where do I choose which managers get notified about shift swaps?
say: I'm getting a message every time anyone clocks in and it's driving me crazy. Can I turn that off myself?
say: Is it possible to send staff a text reminder before their shift? Where do I switch it on?
short: turn off clock-in emails?
short: how to set up SMS reminders
more: My inbox is drowning.
""",
    "mobile app basics": """
say: How do my staff clock in from the phone app?
say: Where do staff see their hours for the week in the mobile app?
say: How do I add a new client site so it appears in the app?
say: Half our staff have no idea how to start a shift on their phone. Can you explain the steps so I can pass them on?
say: Is it possible for staff to add a note or photo to a job from the app?
short: how do staff clock in
short: add a new site how
more: Some of our staff aren't very tech savvy.
""",
    "print rota": """
say: How do I print the rota for the staff room wall?
say: Can I email the week's schedule to staff who don't use the app?
say: Is it possible to get the week's rota as a PDF to pin up?
short: how to print the rota
short: email schedule to staff?
more: A few older staff members refuse to install the app.
""",
    "looks broken but isn't": """
say: My staff say they can't see next week's shifts in the app. Do I need to publish them somehow?
say: I deleted a shift by accident. How do I get it back?
say: Our {city2} location shows times an hour off from head office. Where do I set the time zone per location?
say: Since I changed my Google password the calendar sync stopped. How do I reconnect it?
say: Staff get 'outside the job area' at one client. How do I move the pin for that address?
say: Where can I check whether an SMS reminder was actually delivered to someone?
say: The invoice says 'draft' and the client can't see it. What do I click to send it properly?
short: staff can't see shifts, need to publish?
short: how to undo a deleted shift
more: Not sure if I'm doing something wrong or it's a glitch.
more: I'm guessing it's a setting somewhere.
""",
}

# Label-neutral context sentences. They deliberately mix in words of every label so that
# "invoice", "error", "feature", "login", "charged", "bug"... are not tied to one class.
CONTEXT = """
We're {size_a}-person {industry} company in {city} and have been on {P} for about {years} years.
I took over the admin side from {person} last month, so please bear with me.
Our accountant usually deals with the billing side of things, but she's on holiday.
Last time I reported an error you fixed it within a day, so thanks for that.
We love the new feature with the colour-coded shifts, by the way.
We had a login issue back in the spring but that's long sorted.
Honestly the app has been great for us overall.
I'm writing this from my phone between jobs so sorry for any typos.
We're in the middle of our busy season so everything is hectic here.
Our old tool charged per location, which is partly why we moved to you.
I already searched the help centre but couldn't find anything.
{person} from our office asked me to get in touch.
We're also thinking about rolling {P} out to our {city2} branch.
No idea if this is the right place to ask.
Not sure if this is a bug, a missing feature or just me.
Our invoices to clients go out every Friday, so timing matters for us.
We're on the {plan} plan, if that matters.
I'm not the most technical person, so apologies in advance.
We have around {n} staff across {k} sites.
Our manager {person} is cc'd.
I've attached a screenshot.
We previously used spreadsheets and WhatsApp groups for all of this.
Our payroll runs on the {payday}, so this week is a bit busy.
We switched from another scheduling tool in {month}.
I did check the status page first and everything was green.
Some of our team only speak a little English.
It's {weekday} and I've been trying to sort this since the morning.
We use {integration} for our accounts.
The rest of the team hasn't noticed anything yet.
Your support has always been quick, so I'm hopeful.
We've just started working for {client}.
My colleague {person2} said they saw something similar last month.
Our refund policy for our own clients is strict, so we're careful with numbers.
We do {industry} work for hospitals and schools mostly.
I know how to do most things in {P}, so this one surprised me.
We pay every month by card and never had a problem with that.
We add new staff almost every week at the moment.
Our admin {person} is off sick, so I'm covering.
Please add this to my earlier ticket if there is one.
I had to reset my password twice this year already, ha.
We've asked for a couple of improvements over the years and you've been good about it.
The invoicing part is what our owner likes most about {P}.
Our IT person {person2} set everything up originally but has since left.
We're trying to get everything ready before the end of the quarter.
This is for our {city} office.
I'm also trialling another scheduling tool, so I'm comparing.
Normally I'd ask {person}, but they're on leave.
"""

GREETINGS = """
Hi,
Hello,
Hi there,
Hey,
Hello team,
Dear {brand} support,
Dear Sir or Madam,
Good morning,
Good afternoon,
Hi {brand} team,
Hiya,
Hello support,
Hi all,
To whom it may concern,
"""

CLOSERS = """
Thanks
Thank you
Many thanks
Thanks in advance
Cheers
Kind regards
Best regards
Best
Regards
Thanks a lot
Appreciate your help
Thank you for your help
Looking forward to your reply
Speak soon
"""

SIGNATURES = [
    "{first}",
    "{first} {last}",
    "{first} {last}\n{role}, {company}",
    "{first} | {company}",
    "{first}\n{company}",
    "{first} {last}\n{role}\n{company}\n\nSent from my iPhone",
    "-- {first}",
    "{first} ({role})",
    "{company} team",
]

TONE = {
    "polite": "Sorry to bother you with this.|Hope you're well.|Thanks so much for your patience.|No rush at all.|I appreciate any help you can give.",
    "neutral": "Let me know if you need more information.|Please advise.|Any help appreciated.|Let me know.|Thanks for looking into it.",
    "annoyed": "This is getting frustrating.|Not great, to be honest.|I expected better.|This is the second time I'm writing about this.|Please sort it out.",
    "furious": "This is completely unacceptable!!|I'm losing my patience with you people.|Seriously?!|Third email about this and still nothing.|We are paying good money for this.|Absolutely ridiculous.",
    "urgent": "This is urgent.|Please help ASAP.|Need this sorted today please.|Time-sensitive, sorry!|We need this before Monday.",
}
EMOJI = ["🙏", "😡", "🙂", "👍", "😅", "🤦", "😤", "🤞", "😩", "!!!"]

# Slot values. Fixed lists; a few numeric slots are drawn in fill_slots().
SLOTS = {
    "month": "January February March April May June July August September October November December",
    "plan": "Starter|Team|Business",
    "city": "Leeds|Manchester|Dublin|Bristol|Glasgow|Cork|Cardiff|Rotterdam|Antwerp|Lyon|Austin|Denver|Toronto|Perth|Auckland",
    "country": "Germany|France|Ireland|the Netherlands|Belgium|Spain|Poland|Portugal|Italy|Canada",
    "browser": "Chrome|Safari|Firefox|Edge",
    "device": "iPhone 13|iPhone SE|Samsung Galaxy A52|Pixel 7|Galaxy S21|iPad|Motorola G9|Xiaomi Redmi Note 11",
    "integration": "Xero|QuickBooks|Slack|Google Calendar|Outlook",
    "calendar": "Google|Outlook|Apple",
    "newint": "Microsoft Teams|HubSpot|Personio|DATEV|Sage|FreshBooks|Pipedrive|Zapier|BambooHR|Monday.com|Salesforce|Gusto",
    "error": "'Error 500'|a 504 Gateway Timeout|'Something went wrong (code E-1042)'|'Unexpected token < in JSON'|'Request failed with status 422'|'Oops! We could not complete that'|'Internal server error'",
    "client": "Harbour Dental|St Anne's School|the Kowalski account|Riverside Care Home|Northgate Offices|Maple Court|Bluewater Gym|Hillside Surgery|the Okafor residence|Kings Road Hotel",
    "currency": "EUR|USD|GBP|CHF|AUD|PLN|SEK",
    "idp": "Okta|Azure AD|OneLogin|JumpCloud|Keycloak",
    "weekday": "Monday|Tuesday|Wednesday|Thursday|Friday",
    "lang": "Polish|Portuguese|Spanish|Romanian|Arabic|Ukrainian|Tagalog",
    "role": "Operations Manager|Office Manager|Director|Scheduler|Payroll Admin|Area Supervisor|Owner|Finance Lead|HR Coordinator",
    "payday": "25th|last Friday of the month|1st|15th",
    "first": "Maria Tom Aisha Piotr Sinead Grace Liam Fatima Jonas Chloe Raj Ewa Daniel Nora Kofi Lucia Ben Hannah Marco Yusuf Emma Oliver Priya Sam Ines Dmitri Kate Ahmed Laura Josh",
    "last": "Nowak Byrne Patel Smith Okafor Jansen Murphy Rossi Kaur Garcia Walsh Dubois Kowalski Evans Mensah Schmidt Taylor Costa Ali Brennan",
}

CUSTOMER_PREFIX = (
    "acme bright north south east west green blue red silver golden summit harbour river maple oak "
    "pine cedar willow apex prime swift clear fresh urban metro coastal valley highland lakeside "
    "sunrise evergreen keystone pioneer liberty unity crown castle bridge stone iron copper amber "
    "orchard meadow falcon eagle heron fox otter beacon compass anchor atlas nova orbit zenith "
    "kingfisher thistle clover juniper"
).split()
CUSTOMER_SUFFIX = {
    "cleaning": "cleaning", "care": "home care", "logistics": "logistics", "security": "security",
    "facilities": "facilities", "plumbing": "plumbing", "electrical": "electrical", "catering": "catering",
    "events": "events", "landscaping": "landscaping", "dental": "dental", "staffing": "staffing",
    "maintenance": "maintenance", "hospitality": "hospitality", "healthcare": "healthcare",
    "removals": "removals", "hvac": "HVAC", "pest-control": "pest control", "couriers": "courier",
    "nursing": "nursing",
}

# ---------------------------------------------------------------------------------------
# Composition
# ---------------------------------------------------------------------------------------


def lines(block: str) -> list[str]:
    return [x for x in block.strip().split("\n") if x.strip()]


def parse_intent(block: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"say": [], "short": [], "more": []}
    for line in lines(block):
        key, _, text = line.partition(":")
        out[key.strip()].append(text.strip())
    assert out["say"] and out["short"], block
    return out


PARSED = {lab: {name: parse_intent(b) for name, b in subs.items()} for lab, subs in INTENTS.items()}
CONTEXT_LINES = lines(CONTEXT)
GREETING_LINES = lines(GREETINGS)
CLOSER_LINES = lines(CLOSERS)
SIGNATURE_LINES = SIGNATURES
TONE_LINES = {k: v.split("|") for k, v in TONE.items()}
SLOT_VALUES = {k: (v.split("|") if "|" in v else v.split()) for k, v in SLOTS.items()}


def make_customers(rng: random.Random) -> list[dict]:
    pairs = [(p, s) for p in CUSTOMER_PREFIX for s in CUSTOMER_SUFFIX]
    rng.shuffle(pairs)
    customers = []
    for prefix, suffix in pairs[:N_CUSTOMERS]:
        cid = f"{prefix}-{suffix}"
        display = f"{prefix.title()} {suffix.replace('-', ' ').title()}"
        if suffix == "hvac":
            display = f"{prefix.title()} HVAC"
        customers.append({
            "id": cid,
            "company": display,
            "domain": cid.replace("-", "") + rng.choice([".com", ".co.uk", ".ie", ".eu", ".net"]),
            "industry": CUSTOMER_SUFFIX[suffix],
            "first": rng.choice(SLOT_VALUES["first"]),
            "last": rng.choice(SLOT_VALUES["last"]),
            "role": rng.choice(SLOT_VALUES["role"]),
            # writing habits of this customer's contact person
            "nonnative": rng.random() < 0.15,
            "sloppy": rng.random() < 0.25,
            "temper": rng.choice(["calm", "calm", "calm", "hot"]),
        })
    return customers


def money(rng: random.Random, low: float, high: float) -> tuple[str, float]:
    value = rng.uniform(low, high)
    value = round(value) if rng.random() < 0.6 else round(value, 2)
    sym = rng.choice(["€", "$", "£"])
    text = f"{sym}{value:,.2f}" if isinstance(value, float) and value != int(value) else f"{sym}{int(value):,}"
    return text, value


def fill_slots(rng: random.Random, cust: dict) -> dict[str, str]:
    s = {k: rng.choice(v) for k, v in SLOT_VALUES.items()}
    s.update({k: cust[k] for k in ("company", "domain", "industry", "first", "last", "role")})
    others = [c for c in SLOT_VALUES["first"] if c != cust["first"]]
    s["person"], s["person2"] = rng.sample(others, 2)
    s["plan2"] = rng.choice([p for p in SLOT_VALUES["plan"] if p != s["plan"]])
    s["city2"] = rng.choice([c for c in SLOT_VALUES["city"] if c != s["city"]])
    s["browser2"] = rng.choice([b for b in SLOT_VALUES["browser"] if b != s["browser"]])
    amount, value = money(rng, 29, 2400)
    s["amount"] = amount
    s["amount2"] = f"{amount[0]}{value * rng.uniform(1.15, 1.8):,.2f}"
    s["n"] = str(rng.randint(6, 140))
    s["m"] = str(max(2, int(s["n"]) - rng.randint(2, 20)))
    s["k"] = str(rng.randint(2, 9))
    s["size"] = str(rng.choice([8, 12, 15, 20, 25, 30, 45, 60, 80, 120, 200]))
    s["size_a"] = ("an " if s["size"].startswith("8") else "a ") + s["size"]
    s["years"] = rng.choice(["two", "three", "four", "five", "a couple of", "six"])
    s["mins"] = str(rng.choice([10, 15, 20, 30, 45]))
    s["year"] = str(rng.choice([2022, 2023, 2024]))
    s["date"] = rng.choice([
        f"{rng.randint(1, 28)} {s['month']}", f"the {rng.choice(['1st', '2nd', '3rd', '5th', '14th', '20th', '28th'])}",
        f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}", f"{s['month'][:3]} {rng.randint(1, 28)}",
    ])
    s["last4"] = f"{rng.randint(0, 9999):04d}"
    s["card"] = rng.choice(["the Visa", "the Mastercard", "our Amex", "the company card"]) + f" ending {s['last4']}"
    s["card2"] = rng.choice(["the new Visa", "the Mastercard", "our new company card"]) + f" ending {rng.randint(0, 9999):04d}"
    s["inv"] = f"{rng.choice(['INV-', 'CB-', '#', 'INV '])}{rng.randint(10000, 99999)}"
    s["po"] = f"PO-{rng.randint(1000, 99999)}"
    s["vat"] = rng.choice(["GB", "IE", "DE", "NL", "FR", "BE"]) + str(rng.randint(10**8, 10**9 - 1))
    s["email"] = f"{s['person'].lower()}@{cust['domain']}"
    s["email2"] = f"{s['person2'].lower()}.{rng.choice(SLOT_VALUES['last']).lower()}@{cust['domain']}"
    s["old_domain"] = cust["id"].split("-")[0] + rng.choice(["mail.com", "-ltd.co.uk", "group.com"])
    s["my_email"] = f"{cust['first'].lower()}@{cust['domain']}"
    s["old_email"] = f"{cust['first'].lower()}@{s['old_domain']}"
    s["brand"] = rng.choice(["Crewbook", "Crewbook", "CrewBook"])
    s["P"] = rng.choice(["Crewbook"] * 6 + ["CrewBook", "crewbook", "your app", "the app", "you guys"])
    return s


def fmt(text: str, slots: dict[str, str]) -> str:
    return text.format_map(slots)


# --- paraphrase layer --------------------------------------------------------------------
# Each writer has their own vocabulary: per ticket, every pattern below is replaced by one
# choice, used consistently throughout the ticket.
SYNONYMS = [
    (r"\bstaff member\b", ["staff member", "employee", "team member", "worker"]),
    (r"\bstaff members\b", ["staff members", "employees", "team members", "workers"]),
    (r"\bstaff\b(?! room| member)", ["staff", "staff", "employees", "team members", "workers", "people", "crew"]),
    (r"\brota\b", ["rota", "rota", "schedule", "roster", "planning"]),
    (r"\bclients\b", ["clients", "clients", "customers"]),
    (r"\bclient\b", ["client", "client", "customer"]),
    (r"\bworkspace\b", ["workspace", "account", "company account", "organisation"]),
    (r"\bHow do I\b", ["How do I", "How do I", "How can I", "How would I", "What's the way to", "Can someone explain how to"]),
    (r"\bWhere do I\b", ["Where do I", "Where can I", "Where would I", "In which menu do I"]),
    (r"\bCan you\b", ["Can you", "Could you", "Would you be able to", "Are you able to"]),
    (r"\bimmediately\b", ["immediately", "right away", "asap", "today"]),
    (r"\bsince this morning\b", ["since this morning", "since 8am", "since early today", "all morning"]),
    (r"\bI can't\b", ["I can't", "I'm unable to", "I cannot"]),
    (r"\bWe'd like\b", ["We'd like", "We would like", "We want", "We'd love"]),
    (r"\bIs it possible\b", ["Is it possible", "Is it possible", "Would it be possible", "Any way"]),
    (r"\bshifts\b", ["shifts", "shifts", "shifts", "bookings", "visits"]),
    (r"\bmanager\b", ["manager", "manager", "supervisor", "team lead"]),
]


def paraphrase(rng: random.Random, text: str) -> str:
    for pattern, options in SYNONYMS:
        choice = rng.choice(options)
        text = re.sub(pattern, lambda m, c=choice: c[0].upper() + c[1:] if m.group(0)[0].isupper() else c, text)
    return text


def aside(rng: random.Random, label: str, slots: dict) -> str:
    """A passing remark about something of another label; the main request sets the label."""
    other = rng.choice(sorted(lab for lab in PARSED if lab != label))
    intent = PARSED[other][rng.choice(sorted(PARSED[other]))]
    remark = fmt(rng.choice(intent["short"]), slots)
    lead = rng.choice(["P.S. unrelated, but", "PS - not urgent:", "Also, separate thing for later:", "P.S. no need to answer now, but"])
    return f"{lead} {remark}"


# --- noise -----------------------------------------------------------------------------

NONNATIVE_SUBS = [
    (r"\bI can't\b", "I cannot"), (r"\bcan't\b", "is not possible to"), (r"\bdoesn't\b", "is not"),
    (r"\bdon't\b", "not"), (r"\bPlease\b", "Please kindly"), (r"\bsince this morning\b", "from this morning"),
    (r"\bI'm\b", "I am"), (r"\bWe're\b", "We are"), (r"\bHow do I\b", "How I can"),
    (r"\bHow can I\b", "How I can"), (r"\bCan you\b", "Is possible you"), (r"\bIs there\b", "There is"),
    (r"\bwould like\b", "want"), (r"\bhas been\b", "is"), (r"\bused to\b", "before was"),
]


def nonnative(rng: random.Random, text: str) -> str:
    for pattern, repl in NONNATIVE_SUBS:
        if rng.random() < 0.7:
            text = re.sub(pattern, repl, text)
    # drop articles here and there
    return re.sub(r"\b(the|a|an) ", lambda m: "" if rng.random() < 0.45 else m.group(0), text)


def typos(rng: random.Random, text: str, rate: float) -> str:
    out = []
    for w in text.split(" "):
        if len(w) > 3 and w.isalpha() and rng.random() < rate:
            i = rng.randrange(1, len(w) - 1)
            op = rng.choice(["swap", "drop", "double", "swap"])
            if op == "swap":
                w = w[:i] + w[i + 1] + w[i] + w[i + 2:]
            elif op == "drop":
                w = w[:i] + w[i + 1:]
            else:
                w = w[:i] + w[i] + w[i:]
        out.append(w)
    return " ".join(out)


CHAT_SUBS = [(r"\bplease\b", "pls"), (r"\bPlease\b", "pls"), (r"\byou\b", "u"), (r"\bthanks\b", "thx"),
             (r"\bThanks\b", "thx"), (r"\bbecause\b", "bc"), (r"\bI don't know\b", "idk")]


def chattify(rng: random.Random, text: str) -> str:
    for pattern, repl in CHAT_SUBS:
        if rng.random() < 0.5:
            text = re.sub(pattern, repl, text)
    if rng.random() < 0.6:
        text = text.lower()
    if rng.random() < 0.5:
        text = text.rstrip(".")
    return text


def shout(rng: random.Random, sentence: str) -> str:
    """Capitalise a sentence, or a few words of it."""
    words = sentence.split(" ")
    if len(words) <= 6 or rng.random() < 0.4:
        return sentence.upper()
    i = rng.randrange(0, len(words) - 3)
    j = i + rng.randint(2, 4)
    return " ".join(words[:i] + [w.upper() for w in words[i:j]] + words[j:])


# --- ticket styles -----------------------------------------------------------------------


def pick_tone(rng: random.Random, cust: dict) -> str:
    if cust["temper"] == "hot":
        return rng.choice(["annoyed", "furious", "furious", "urgent", "neutral"])
    return rng.choices(["polite", "neutral", "annoyed", "furious", "urgent"], [30, 35, 15, 7, 13])[0]


def contexts(rng: random.Random, slots: dict, k: int) -> list[str]:
    return [fmt(c, slots) for c in rng.sample(CONTEXT_LINES, k)]


def signoff(rng: random.Random, slots: dict) -> str:
    closer = fmt(rng.choice(CLOSER_LINES), slots)
    sig = fmt(rng.choice(SIGNATURE_LINES), slots)
    return f"{closer}{rng.choice([',', '', '!', ','])}\n{sig}"


def one_liner(rng, intent, slots, tone):
    text = fmt(rng.choice(intent["short"] + intent["say"][:1]), slots)
    if rng.random() < 0.5:
        text = text.lower()
    if tone == "furious" and rng.random() < 0.5:
        text = text.upper()
    return text


def chat(rng, intent, slots, tone):
    parts = []
    if rng.random() < 0.35:
        parts.append(rng.choice(["hey", "hi", "hello", "hey there", "hi again", "yo", "morning"]))
    if rng.random() < 0.25:
        parts.append(rng.choice(contexts(rng, slots, 1)))
    parts.append(fmt(rng.choice(intent["say"]), slots))
    if intent["more"] and rng.random() < 0.45:
        parts.append(fmt(rng.choice(intent["more"]), slots))
    if rng.random() < 0.4:
        parts.append(rng.choice(TONE_LINES[tone]))
    sep = rng.choice([" ", " ", "\n", " - "])
    text = sep.join(parts)
    text = chattify(rng, text)
    if rng.random() < 0.3:
        text += rng.choice(["", " ", "  "]) + rng.choice(["thx", "ty", "thanks", "cheers", "?", "pls help"])
    return text


SUBJECTS = ["Question", "Quick question", "Help please", "Support request", "Issue", "Re: your email",
            "Our account", "{company}", "Need help", "Follow-up", "Request", "Problem", "(no subject)"]


def subject_line(rng, intent, slots, core):
    """The short form if it shares a content word with the core sentence, else a generic subject."""
    core_words = {w for w in words(core) if len(w) >= 5}
    fitting = [s for s in (fmt(x, slots) for x in intent["short"]) if core_words & set(words(s))]
    if fitting and rng.random() < 0.7:
        return rng.choice(fitting)
    return fmt(rng.choice(SUBJECTS), slots)


def email(rng, intent, slots, tone):
    n_ctx = rng.choice([0, 0, 1, 1, 2])
    ctx = contexts(rng, slots, n_ctx)
    core = fmt(rng.choice(intent["say"]), slots)
    if tone == "furious" and rng.random() < 0.6:
        core = shout(rng, core)
    more = [fmt(m, slots) for m in rng.sample(intent["more"], rng.randint(0, len(intent["more"])))]
    tone_line = rng.choice(TONE_LINES[tone]) if rng.random() < 0.6 else None
    first = ctx[:1] + [core] if rng.random() < 0.6 else [core] + ctx[:1]
    para1 = " ".join(first)
    para2 = " ".join(ctx[1:] + more + ([tone_line] if tone_line else []))
    greeting = fmt(rng.choice(GREETING_LINES), slots)
    text = greeting + "\n\n" + para1
    if para2:
        text += ("\n\n" if rng.random() < 0.6 else " ") + para2
    text += "\n\n" + signoff(rng, slots)
    if rng.random() < 0.4:
        subject = subject_line(rng, intent, slots, core)
        text = f"Subject: {subject[0].upper() + subject[1:]}\n\n" + text
    return text


def bullets(rng, intent, slots, tone):
    greeting = fmt(rng.choice(GREETING_LINES), slots)
    lead = rng.choice(["Quick summary:", "Details:", "Here's what's going on:", "Some context:", "In short:"])
    items = [fmt(rng.choice(intent["say"]), slots)]
    items += [fmt(m, slots) for m in intent["more"]]
    items += contexts(rng, slots, rng.randint(1, 2))
    head, rest = items[0], items[1:]
    rng.shuffle(rest)
    items = [head] + rest if rng.random() < 0.6 else rest[:1] + [head] + rest[1:]
    mark = rng.choice(["-", "*", "•"])
    body = "\n".join(f"{mark} {x}" for x in items)
    text = f"{greeting}\n\n{lead}\n{body}"
    if rng.random() < 0.5:
        text += "\n\n" + rng.choice(TONE_LINES[tone])
    return text + "\n\n" + signoff(rng, slots)


def rambling(rng, intent, slots, tone):
    ctx = contexts(rng, slots, rng.randint(3, 7))
    core = fmt(rng.choice(intent["say"]), slots)
    second = [x for x in (fmt(s, slots) for s in intent["say"]) if x != core]
    more = [fmt(m, slots) for m in intent["more"]]
    opener = rng.choice([
        "I hope this reaches the right person.", "Long story, sorry.",
        "I'll try to explain from the beginning.", "So, where do I start.",
        "Apologies for the long message but I want to give you the full picture.",
    ])
    mid = rng.sample(ctx, 2)
    paras = [opener + " " + " ".join(mid)]
    p2 = [core]
    if second and rng.random() < 0.5:
        p2.append(rng.choice(second))
    p2 += rng.sample(more, len(more))
    paras.append(" ".join(p2))
    tail = [c for c in ctx if c not in mid]
    if tone in ("annoyed", "furious"):
        tail.append(shout(rng, rng.choice(TONE_LINES[tone])))
    else:
        tail.append(rng.choice(TONE_LINES[tone]))
    paras.append(" ".join(tail))
    greeting = fmt(rng.choice(GREETING_LINES), slots)
    return greeting + "\n\n" + "\n\n".join(paras) + "\n\n" + signoff(rng, slots)


STYLES = {"one_liner": (one_liner, 14), "chat": (chat, 28), "email": (email, 34),
          "bullets": (bullets, 8), "rambling": (rambling, 16)}


def make_ticket(rng: random.Random, label: str, cust: dict) -> str:
    intent = PARSED[label][rng.choice(sorted(PARSED[label]))]
    slots = fill_slots(rng, cust)
    tone = pick_tone(rng, cust)
    style = rng.choices(list(STYLES), [w for _, w in STYLES.values()])[0]
    text = STYLES[style][0](rng, intent, slots, tone)
    if style in ("email", "rambling", "bullets") and rng.random() < 0.12:
        text += "\n\n" + aside(rng, label, slots)
    text = paraphrase(rng, text)
    if cust["nonnative"] and rng.random() < 0.8:
        text = nonnative(rng, text)
    if cust["sloppy"] or rng.random() < 0.1:
        text = typos(rng, text, rng.choice([0.02, 0.04, 0.07]))
    if rng.random() < 0.07 or (tone == "furious" and rng.random() < 0.3):
        text += " " + rng.choice(EMOJI)
    return text.strip()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def is_near_duplicate(text: str, seen: set[str], word_sets: list[set[str]]) -> bool:
    """Same words ignoring case, punctuation and emoji, or 85%+ word overlap with an earlier ticket."""
    w = words(text)
    if " ".join(w) in seen:
        return True
    a = set(w)
    return len(a) >= 4 and any(len(a & b) / len(a | b) >= 0.85 for b in word_sets)


def main() -> None:
    rng = random.Random(SEED)
    customers = make_customers(rng)
    # every customer files at least one ticket; the rest go to customers with skewed weights
    total = sum(LABEL_COUNTS.values())
    weights = [rng.choice([1, 1, 1, 2, 2, 3, 5, 8]) for _ in customers]
    owners = list(customers) + rng.choices(customers, weights, k=total - len(customers))
    rng.shuffle(owners)
    labels = [lab for lab, n in LABEL_COUNTS.items() for _ in range(n)]
    rng.shuffle(labels)

    seen: set[str] = set()
    word_sets: list[set[str]] = []
    rows = []
    for label, cust in zip(labels, owners):
        text = make_ticket(rng, label, cust)
        while is_near_duplicate(text, seen, word_sets):
            text = make_ticket(rng, label, cust)
        key = " ".join(words(text))
        seen.add(key)
        word_sets.append(set(key.split()))
        rows.append({
            "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}],
            "customer": cust["id"],
        })
    rng.shuffle(rows)
    with OUT.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} tickets from {len({r['customer'] for r in rows})} customers to {OUT.name}")


if __name__ == "__main__":
    main()
